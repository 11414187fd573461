package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

// Secrets permissions (SEC-1). Reading values and writing them are
// distinct (AC-2).
const (
	PermSecretsRead  = "secrets.read"
	PermSecretsWrite = "secrets.write"
)

// SecretsDeps are the web layer's dependencies for the secrets store.
type SecretsDeps struct {
	// Secrets is the store; nil leaves the secrets API out.
	Secrets *secrets.Service
	// Rotate runs the rotation policy of ws/name now; nil or a secret
	// without a policy answers 404 "rotation_policy_not_found".
	Rotate func(ctx context.Context, a secrets.Actor, ws, name string) (int, error)
}

// secretsWeb is this feature's part of the server.
type secretsWeb struct {
	sec    *secrets.Service
	rotate func(ctx context.Context, a secrets.Actor, ws, name string) (int, error)
}

func newSecretsWeb(d SecretsDeps) secretsWeb {
	return secretsWeb{sec: d.Secrets, rotate: d.Rotate}
}

// secretsRoutes registers the same API twice: for operator-level secrets
// (operator staff: MFA session from an allowed network) and for a
// workspace's (secrets.read / secrets.write, sessions and API keys).
func (s *server) secretsRoutes(mux *http.ServeMux) {
	if s.sec == nil {
		return
	}
	for _, prefix := range []string{"/v1/operator/secrets", "/v1/workspaces/{ws}/secrets"} {
		mux.Handle("GET "+prefix, noStore(s.apiSecretsList))
		mux.Handle("GET "+prefix+"/{name}", noStore(s.apiSecretDescribe))
		mux.Handle("PUT "+prefix+"/{name}", noStore(s.apiSecretPut))
		mux.Handle("GET "+prefix+"/{name}/value", noStore(s.apiSecretValue))
		mux.Handle("POST "+prefix+"/{name}/promote", noStore(s.apiSecretPromote))
		mux.Handle("POST "+prefix+"/{name}/rotate", noStore(s.apiSecretRotate))
		mux.Handle("DELETE "+prefix+"/{name}", noStore(s.apiSecretDelete))
		mux.Handle("POST "+prefix+"/{name}/restore", noStore(s.apiSecretRestore))
		mux.Handle("POST "+prefix+"/{name}/destroy", noStore(s.apiSecretDestroy))
	}
}

var errSecretName = fault.New(fault.NotFound, "secret_not_found", "no such secret")

// secretScope authenticates the request for the scope in its path: the
// operator level ("" workspace) or {ws} with perm. It answers the error
// itself when not ok.
func (s *server) secretScope(w http.ResponseWriter, r *http.Request, perm string) (string, secrets.Actor, bool) {
	if r.PathValue("ws") == "" {
		p, err := s.personPrincipal(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return "", secrets.Actor{}, false
		}
		op, err := s.ten.OperatorPrincipal(r.Context(), p)
		if err != nil {
			s.writeError(w, r, err)
			return "", secrets.Actor{}, false
		}
		noteActor(r.Context(), audit.ActorOperator, op.UserID)
		return "", secrets.Actor{Type: audit.ActorOperator, ID: op.UserID}, true
	}
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return "", secrets.Actor{}, false
	}
	if err := s.ten.Require(r.Context(), p, ws, perm); err != nil {
		s.writeError(w, r, err)
		return "", secrets.Actor{}, false
	}
	typ, id := principalActor(p)
	return ws, secrets.Actor{Type: typ, ID: id}, true
}

// secretTarget is secretScope followed by secretName: the scope, actor
// and secret name of a request on one secret.
func (s *server) secretTarget(w http.ResponseWriter, r *http.Request, perm string) (string, secrets.Actor, string, bool) {
	ws, actor, ok := s.secretScope(w, r, perm)
	if !ok {
		return "", secrets.Actor{}, "", false
	}
	name, ok := s.secretName(w, r)
	return ws, actor, name, ok
}

// secretName returns the {name} path value when it can name a secret.
func (s *server) secretName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if !secrets.ValidName(name) {
		s.writeError(w, r, errSecretName)
		return "", false
	}
	return name, true
}

type secretRotationJSON struct {
	Policy      string     `json:"policy,omitempty"`
	Status      string     `json:"status,omitempty"`
	Error       string     `json:"error,omitempty"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
}

type secretVersionJSON struct {
	Version   int       `json:"version"`
	Stage     string    `json:"stage,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	Destroyed bool      `json:"destroyed,omitempty"`
}

type secretJSON struct {
	Name           string              `json:"name"`
	CurrentVersion int                 `json:"current_version"`
	LatestVersion  int                 `json:"latest_version"`
	CreatedAt      time.Time           `json:"created_at"`
	UpdatedAt      time.Time           `json:"updated_at"`
	DeletedAt      *time.Time          `json:"deleted_at,omitempty"`
	Rotation       *secretRotationJSON `json:"rotation,omitempty"`
	Versions       []secretVersionJSON `json:"versions,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func toSecretJSON(sec secrets.Secret, vs []secrets.Version) secretJSON {
	out := secretJSON{Name: sec.Name, CurrentVersion: sec.Current, LatestVersion: sec.Latest, CreatedAt: sec.CreatedAt.UTC(),
		UpdatedAt: sec.UpdatedAt.UTC(), DeletedAt: timePtr(sec.DeletedAt)}
	if rs := sec.Rotation; rs.Policy != "" || rs.Status != "" {
		out.Rotation = &secretRotationJSON{Policy: rs.Policy, Status: rs.Status, Error: rs.Error,
			LastAttempt: timePtr(rs.LastAttempt), LastSuccess: timePtr(rs.LastSuccess)}
	}
	for _, v := range vs {
		out.Versions = append(out.Versions, secretVersionJSON{Version: v.Version, Stage: string(v.Stage), CreatedAt: v.CreatedAt.UTC(),
			CreatedBy: v.CreatedBy, Destroyed: v.Destroyed})
	}
	return out
}

func (s *server) apiSecretsList(w http.ResponseWriter, r *http.Request) {
	ws, _, ok := s.secretScope(w, r, PermSecretsRead)
	if !ok {
		return
	}
	q, err := strictQuery(r, "deleted")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	deleted := false
	switch q.Get("deleted") {
	case "", "false":
	case "true":
		deleted = true
	default:
		s.writeError(w, r, fault.New(fault.Invalid, "query_invalid", "deleted is true or false"))
		return
	}
	list, err := s.sec.List(r.Context(), ws, deleted)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]secretJSON, 0, len(list))
	for _, sec := range list {
		out = append(out, toSecretJSON(sec, nil))
	}
	writeJSON(w, http.StatusOK, struct {
		Secrets []secretJSON `json:"secrets"`
	}{out})
}

func (s *server) apiSecretDescribe(w http.ResponseWriter, r *http.Request) {
	ws, _, name, ok := s.secretTarget(w, r, PermSecretsRead)
	if !ok {
		return
	}
	sec, vs, err := s.sec.Describe(r.Context(), ws, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toSecretJSON(*sec, vs))
}

// secretPutBody is a write: the value (text), an optional check-and-set
// version and stage.
type secretPutBody struct {
	Value string `json:"value"`
	CAS   *int   `json:"cas"`
	Stage string `json:"stage"`
}

func (s *server) apiSecretPut(w http.ResponseWriter, r *http.Request) {
	ws, actor, name, ok := s.secretTarget(w, r, PermSecretsWrite)
	if !ok {
		return
	}
	in, err := decodeJSON[secretPutBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o := secrets.PutOptions{CAS: in.CAS}
	if in.CAS != nil && *in.CAS < 0 {
		s.writeError(w, r, fault.New(fault.Invalid, "cas_invalid", "cas is a version number (0: the secret must not exist)"))
		return
	}
	if in.Stage != "" {
		if o.Stage, err = secrets.ParseStage(in.Stage); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	sec, v, err := s.sec.Put(r.Context(), actor, ws, name, []byte(in.Value), o)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := http.StatusOK
	if v == 1 {
		st = http.StatusCreated
	}
	writeJSON(w, st, struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		Stage   string `json:"stage"`
		Current int    `json:"current_version"`
	}{sec.Name, v, string(o.Stage.OrCurrent()), sec.Current})
}

func (s *server) apiSecretValue(w http.ResponseWriter, r *http.Request) {
	ws, actor, name, ok := s.secretTarget(w, r, PermSecretsRead)
	if !ok {
		return
	}
	q, err := strictQuery(r, "version", "stage")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var sel secrets.Selector
	if v := q.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || strconv.Itoa(n) != v {
			s.writeError(w, r, fault.New(fault.Invalid, "query_invalid", "version is a positive integer"))
			return
		}
		sel.Version = n
	}
	if st := q.Get("stage"); st != "" {
		if sel.Stage, err = secrets.ParseStage(st); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	v, err := s.sec.Get(r.Context(), actor, ws, name, sel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		Stage   string `json:"stage,omitempty"`
		Value   string `json:"value"`
	}{name, v.Version.Version, string(v.Version.Stage), string(v.Value)})
	clear(v.Value)
}

type secretVersionBody struct {
	Version int `json:"version"`
}

func (s *server) apiSecretPromote(w http.ResponseWriter, r *http.Request) {
	ws, actor, name, ok := s.secretTarget(w, r, PermSecretsWrite)
	if !ok {
		return
	}
	in, err := decodeJSON[secretVersionBody](r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Version < 1 {
		s.writeError(w, r, fault.New(fault.Invalid, "version_invalid", "version is a positive integer"))
		return
	}
	if err := s.sec.Promote(r.Context(), actor, ws, name, in.Version); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiSecretRotate(w http.ResponseWriter, r *http.Request) {
	ws, actor, name, ok := s.secretTarget(w, r, PermSecretsWrite)
	if !ok {
		return
	}
	if s.rotate == nil {
		s.writeError(w, r, fault.New(fault.NotFound, "rotation_policy_not_found", "no rotation policy rotates this secret"))
		return
	}
	v, err := s.rotate(r.Context(), actor, ws, name)
	if err != nil {
		var re *secrets.RotationError
		if errors.As(err, &re) {
			err = fault.Wrap(fault.Unavailable, "rotation_failed", "the rotation failed at step "+re.Step+"; the current version is unchanged", err)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	}{name, v})
}

func (s *server) apiSecretDelete(w http.ResponseWriter, r *http.Request) {
	s.secretLifecycle(w, r, s.sec.Delete)
}

func (s *server) apiSecretRestore(w http.ResponseWriter, r *http.Request) {
	s.secretLifecycle(w, r, s.sec.Restore)
}

// apiSecretDestroy wipes every value: the body must confirm the name.
func (s *server) apiSecretDestroy(w http.ResponseWriter, r *http.Request) {
	s.secretLifecycle(w, r, func(ctx context.Context, a secrets.Actor, ws, name string) error {
		in, err := decodeJSON[struct {
			Confirm string `json:"confirm"`
		}](r)
		if err != nil {
			return err
		}
		if in.Confirm != name {
			return fault.New(fault.Invalid, "confirmation_mismatch", "confirm must equal the secret's name")
		}
		return s.sec.Destroy(ctx, a, ws, name)
	})
}

func (s *server) secretLifecycle(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, a secrets.Actor, ws, name string) error) {
	ws, actor, name, ok := s.secretTarget(w, r, PermSecretsWrite)
	if !ok {
		return
	}
	if err := op(r.Context(), actor, ws, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
