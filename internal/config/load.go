package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rampartsec/rampart/internal/fault"
)

// envPrefix starts every configuration variable.
const envPrefix = "RAMPART_"

// readElsewhere reports RAMPART_ variables that are read outside the field
// mapping and so must not be reported as typos.
func readElsewhere(name string) bool {
	switch name {
	case "RAMPART_CONFIG", // config file path, read by Flags.ConfigPath
		"RAMPART_ROOT_KEY",      // the root key itself, read by the key loader
		"RAMPART_TEST_POSTGRES": // integration tests only
		return true
	}
	return false
}

// maxSecretFile bounds a ${file:…} read: a secret is small, and a reference
// to /dev/zero or a log file must not stall startup or fill memory.
const maxSecretFile = 1 << 20

// Load builds a Config from the defaults, the YAML file at path (skipped
// when path is ""; a missing explicit file is an error), the RAMPART_*
// variables in environ (os.Environ() format), and finally resolves secret
// references. It does not Finalize or Validate: flags may still follow (see
// FromFlags).
func Load(path string, environ []string) (Config, error) {
	c, err := loadUnresolved(path, environ)
	if err != nil {
		return Config{}, err
	}
	if err := resolveSecrets(&c, environ); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loadUnresolved is Load without secret resolution, so FromFlags can resolve
// references given on the command line too.
func loadUnresolved(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fault.Wrap(fault.Invalid, "config_file", "cannot read config file "+path, err)
		}
		if err := decodeYAML(data, &c); err != nil {
			return Config{}, fault.Wrap(fault.Invalid, "config_file", "invalid config file "+path, err)
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return Config{}, err
	}
	return c, nil
}

// decodeYAML overlays one YAML document onto c. Unknown keys are errors so
// that a misspelt setting is not silently ignored in favour of a default.
func decodeYAML(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults stand
		}
		return err
	}
	// A second document would be ignored; say so instead.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("config file must contain exactly one YAML document")
	}
	return nil
}

// leaf is one settable configuration value found by walking the struct.
type leaf struct {
	path  []string // yaml tag names from the root
	value reflect.Value
}

func (l leaf) yamlPath() string { return strings.Join(l.path, ".") }

func (l leaf) envName() string {
	return envPrefix + strings.ToUpper(strings.Join(l.path, "_"))
}

var timeType = reflect.TypeOf(time.Time{})
var durationType = reflect.TypeOf(time.Duration(0))

// leaves lists every settable field of c in declaration order. Nested
// structs are descended into, except time.Time which is a value.
func leaves(c *Config) []leaf {
	var out []leaf
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name) // yaml.v3's own default
			}
			p := append(append([]string(nil), path...), name)
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && fv.Type() != timeType {
				walk(fv, p)
				continue
			}
			out = append(out, leaf{path: p, value: fv})
		}
	}
	walk(reflect.ValueOf(c).Elem(), nil)
	return out
}

// lookupEnv returns the first NAME=value in environ, as os.Getenv does.
func lookupEnv(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// applyEnv sets every field whose RAMPART_ variable is present in environ
// and reports unknown RAMPART_ variables. All problems are collected so the
// operator fixes them in one go. Messages name variables, never values.
func applyEnv(c *Config, environ []string) error {
	byName := map[string]leaf{}
	for _, l := range leaves(c) {
		byName[l.envName()] = l
	}
	var problems, unknown []string
	seen := map[string]bool{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || seen[name] {
			continue
		}
		seen[name] = true
		l, known := byName[name]
		if !known {
			if !readElsewhere(name) {
				unknown = append(unknown, name)
			}
			continue
		}
		if err := setFromString(l.value, val); err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): %v", name, l.yamlPath(), err))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		problems = append(problems, "unknown environment variables (typo?): "+strings.Join(unknown, ", "))
	}
	if len(problems) > 0 {
		return fault.Wrap(fault.Invalid, "config_env", "invalid RAMPART_ environment", &ValidationError{Problems: problems})
	}
	return nil
}

// setFromString parses s into v according to v's type. Errors describe the
// expected form only, so a mistyped secret is never echoed.
func setFromString(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return errors.New("not a duration (e.g. 30s, 15m, 12h)")
		}
		v.SetInt(int64(d))
		return nil
	case v.Type() == timeType:
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return errors.New("not an RFC 3339 time (e.g. 2030-01-02T15:04:05Z)")
		}
		v.Set(reflect.ValueOf(t))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer that fits in %s", v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a non-negative integer that fits in %s", v.Type())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return errors.New("not a number")
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", v.Type())
		}
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// resolveSecrets replaces ${env:…} and ${file:…} references in all string
// fields (rotation policies included) and records which fields were
// references (for the SEC-3 check). ${secret:…} references stay as they
// are: the secrets store lives in the database, which loading cannot reach;
// the app resolves them once the store is open (Config.ResolveSecretRefs)
// and refuses to start if one does not resolve. Errors name the field and
// the reference (a variable name or path, not secret in itself) but never a
// resolved value.
func resolveSecrets(c *Config, environ []string) error {
	var problems []string
	var refs map[string]string
	for k, v := range c.Secrets.refs { // FromFlags resolves a second time
		if refs == nil {
			refs = map[string]string{}
		}
		refs[k] = v
	}
	for _, l := range stringFields(c) {
		scheme, arg, ok := parseRef(l.value.String())
		if !ok {
			continue
		}
		if refs == nil {
			refs = map[string]string{}
		}
		refs[l.yamlPath()] = scheme
		if scheme == "secret" {
			if !validSecretName(arg) {
				problems = append(problems, fmt.Sprintf("%s: ${secret:%s}: not a secret name", l.yamlPath(), arg))
			}
			continue
		}
		val, err := resolveRef(scheme, arg, environ)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", l.yamlPath(), err))
			continue
		}
		l.value.SetString(val)
	}
	c.Secrets.refs = refs
	if len(problems) > 0 {
		return fault.Wrap(fault.Invalid, "config_secret", "unresolvable secret reference", &ValidationError{Problems: problems})
	}
	return nil
}

// parseRef splits "${scheme:arg}". Only a whole value is a reference.
func parseRef(s string) (scheme, arg string, ok bool) {
	if !strings.HasPrefix(s, "${") || !strings.HasSuffix(s, "}") {
		return "", "", false
	}
	return strings.Cut(s[2:len(s)-1], ":")
}

func resolveRef(scheme, arg string, environ []string) (string, error) {
	switch scheme {
	case "env":
		if arg == "" {
			return "", errors.New("${env:} needs a variable name")
		}
		v, ok := lookupEnv(environ, arg)
		if !ok {
			return "", fmt.Errorf("${env:%s}: variable is not set", arg)
		}
		if v == "" {
			return "", fmt.Errorf("${env:%s}: variable is empty", arg)
		}
		return v, nil
	case "file":
		if arg == "" {
			return "", errors.New("${file:} needs a path")
		}
		v, err := readSecretFile(arg)
		if err != nil {
			return "", fmt.Errorf("${file:%s}: %w", arg, err)
		}
		return v, nil
	case "secret":
		// Settings walked by resolveSecrets keep these for the app; any
		// other caller (a section resolving its own lists) cannot reach
		// the store.
		return "", errors.New("${secret:…} is not accepted in this setting (see docs/SECRETS.md); use ${env:…} or ${file:…}")
	default:
		return "", fmt.Errorf("unknown reference scheme %q (use env, file or secret)", scheme)
	}
}

// readSecretFile reads a secret file, trimming one trailing newline that
// editors and `echo` add. Errors carry the OS reason, never file content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", pe.Err // e.g. "no such file or directory"
		}
		return "", errors.New("cannot open file")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", errors.New("cannot read file")
	}
	if len(data) > maxSecretFile {
		return "", errors.New("file is larger than 1 MiB")
	}
	s := strings.TrimSuffix(string(data), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", errors.New("file is empty")
	}
	return s, nil
}

// decodeStrict decodes a section node into doc with unknown keys refused,
// as the rest of the file is. Sections that hold lists of records (gateway
// routes, integration providers, rotation policies) decode through it,
// since the environment mapping cannot express those lists.
func decodeStrict(n *yaml.Node, section string, doc any) error {
	raw, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(doc); err != nil {
		return fmt.Errorf("%s: %w", section, err)
	}
	return nil
}
