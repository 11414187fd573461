package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/tenancy"
	"github.com/rampartsec/rampart/internal/vault"
)

// Field-encryption permissions (ENC-5). Encrypt and decrypt are separate so
// an app's write path can hold a key that cannot read anything back.
const (
	PermVaultEncrypt = "vault.encrypt"
	PermVaultDecrypt = "vault.decrypt"
)

// FieldVault is what the field-encryption API needs of the key hierarchy
// (*vault.Vault).
type FieldVault interface {
	SealAppend(ctx context.Context, dst, plaintext []byte, ad vault.AD) ([]byte, error)
	OpenAppend(ctx context.Context, dst, ciphertext []byte, ad vault.AD) ([]byte, error)
	Rewrap(ctx context.Context, ciphertext []byte, ad vault.AD) ([]byte, bool, error)
	BlindIndex(ctx context.Context, workspace, column string, value []byte) ([]byte, error)
	Rotate(ctx context.Context, workspace string) (uint32, error)
	Retire(ctx context.Context, workspace string, min uint32) error
	Status(ctx context.Context) ([]vault.ScopeStatus, error)
}

// VaultDeps are the web layer's dependencies for field encryption.
type VaultDeps struct {
	// Vault is the key hierarchy; nil leaves the vault API out.
	Vault FieldVault
	// VaultMaxBatch bounds the values of one batch call (default 1000).
	VaultMaxBatch int
	// VaultKeyStatus returns one workspace's key state (nil: computed
	// from Vault.Status).
	VaultKeyStatus func(ctx context.Context, ws string) (*vault.ScopeStatus, error)
}

// vaultWeb is this feature's part of the server.
type vaultWeb struct {
	fv       FieldVault
	maxBatch int
	keyState func(ctx context.Context, ws string) (*vault.ScopeStatus, error)
}

func newVaultWeb(d VaultDeps) vaultWeb {
	if d.VaultMaxBatch <= 0 {
		d.VaultMaxBatch = 1000
	}
	vw := vaultWeb{fv: d.Vault, maxBatch: d.VaultMaxBatch, keyState: d.VaultKeyStatus}
	if vw.keyState == nil && d.Vault != nil {
		fv := d.Vault
		vw.keyState = func(ctx context.Context, ws string) (*vault.ScopeStatus, error) {
			all, err := fv.Status(ctx)
			if err != nil {
				return nil, err
			}
			for i := range all {
				if all[i].Scope == ws {
					return &all[i], nil
				}
			}
			return &vault.ScopeStatus{Scope: ws}, nil
		}
	}
	return vw
}

// vaultRoutes registers the field-encryption API (docs/VAULT.md).
func (s *server) vaultRoutes(mux *http.ServeMux) {
	if s.fv == nil {
		return
	}
	mux.Handle("POST /v1/workspaces/{ws}/vault/encrypt", noStore(s.apiVaultEncrypt))
	mux.Handle("POST /v1/workspaces/{ws}/vault/decrypt", noStore(s.apiVaultDecrypt))
	mux.Handle("POST /v1/workspaces/{ws}/vault/rewrap", noStore(s.apiVaultRewrap))
	mux.Handle("POST /v1/workspaces/{ws}/vault/encrypt/batch", noStore(s.apiVaultEncryptBatch))
	mux.Handle("POST /v1/workspaces/{ws}/vault/decrypt/batch", noStore(s.apiVaultDecryptBatch))
	mux.Handle("POST /v1/workspaces/{ws}/vault/rewrap/batch", noStore(s.apiVaultRewrapBatch))
	mux.Handle("POST /v1/workspaces/{ws}/vault/blind-index", noStore(s.apiVaultBlindIndex))
	mux.Handle("GET /v1/workspaces/{ws}/vault/keys", noStore(s.apiVaultKeys))
	mux.Handle("POST /v1/workspaces/{ws}/vault/keys/rotate", noStore(s.apiVaultRotate))
	mux.Handle("POST /v1/workspaces/{ws}/vault/keys/retire", noStore(s.apiVaultRetire))
}

// Limits of the field API. A context field is a table, column or row name
// from the app; a value is one field.
const (
	maxVaultContextField = 256
	maxVaultValue        = 64 << 10
	// maxVaultBody is the outer request cap (middleware): batches are
	// bounded by it as well as by the value count.
	maxVaultBody = 1 << 20
)

// VaultContext is the app's side of the associated data: where the value
// is stored. The workspace comes from the path.
type VaultContext struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	Row    string `json:"row"`
}

// VaultItem is one value in a request: plaintext for encrypt, ciphertext
// for decrypt and rewrap (base64 in JSON).
type VaultItem struct {
	Plaintext  []byte       `json:"plaintext,omitempty"`
	Ciphertext []byte       `json:"ciphertext,omitempty"`
	Context    VaultContext `json:"context"`
}

// VaultBatch is a batch request.
type VaultBatch struct {
	Items []VaultItem `json:"items"`
}

// VaultResult is one value in an answer. A batch decrypt or rewrap answers
// per item: a value that cannot be decrypted gets Error, the others their
// result.
type VaultResult struct {
	Plaintext  []byte       `json:"plaintext,omitempty"`
	Ciphertext []byte       `json:"ciphertext,omitempty"`
	KeyVersion uint32       `json:"key_version,omitempty"`
	Rewrapped  *bool        `json:"rewrapped,omitempty"`
	Error      *errorDetail `json:"error,omitempty"`
}

// VaultBatchResult is a batch answer, items in request order.
type VaultBatchResult struct {
	Items  []VaultResult `json:"items"`
	Failed int           `json:"failed"`
}

var errCannotDecrypt = fault.New(fault.Invalid, "cannot_decrypt",
	"the ciphertext cannot be decrypted: it is malformed, altered, bound to another context, or its key was retired or destroyed")

// checkItem validates one item's context and value.
func checkItem(it *VaultItem, wantPlain bool) error {
	for _, f := range [...]struct{ name, v string }{{"table", it.Context.Table}, {"column", it.Context.Column}, {"row", it.Context.Row}} {
		if len(f.v) > maxVaultContextField || !utf8.ValidString(f.v) {
			return fault.Invalidf("context_invalid", "context.%s must be valid UTF-8 of at most %d bytes", f.name, maxVaultContextField)
		}
	}
	if it.Context.Table == "" || it.Context.Column == "" {
		return fault.New(fault.Invalid, "context_invalid", "context.table and context.column are required (context.row should be the row's stable id)")
	}
	if wantPlain {
		if it.Ciphertext != nil {
			return fault.New(fault.Invalid, "body_invalid", "encrypt takes plaintext, not ciphertext")
		}
		if len(it.Plaintext) > maxVaultValue {
			return fault.Invalidf("value_too_large", "a value may be at most %d bytes", maxVaultValue)
		}
		return nil
	}
	if it.Plaintext != nil {
		return fault.New(fault.Invalid, "body_invalid", "decrypt and rewrap take ciphertext, not plaintext")
	}
	if len(it.Ciphertext) == 0 {
		return fault.New(fault.Invalid, "ciphertext_missing", "ciphertext is required")
	}
	return nil
}

func (c VaultContext) ad(ws string) vault.AD {
	return vault.AD{Workspace: ws, Table: c.Table, Column: c.Column, Row: c.Row}
}

// vaultAuth authenticates, resolves the workspace and requires perms.
func (s *server) vaultAuth(w http.ResponseWriter, r *http.Request, perms ...string) (tenancy.Principal, string, bool) {
	p, ws, ok := s.wsRequest(w, r)
	if !ok {
		return p, "", false
	}
	for _, perm := range perms {
		if err := s.ten.Require(r.Context(), p, ws, perm); err != nil {
			s.writeError(w, r, err)
			return p, "", false
		}
	}
	return p, ws, true
}

// readVaultBody reads a body of up to maxVaultBody and decodes it strictly
// (the fuzzed parseJSON).
func readVaultBody[T any](r *http.Request) (T, error) {
	var zero T
	body, err := io.ReadAll(io.LimitReader(r.Body, maxVaultBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return zero, errBodyTooLarge
		}
		return zero, fault.Wrap(fault.Invalid, "body_unreadable", "the request body could not be read", err)
	}
	if len(body) > maxVaultBody {
		return zero, errBodyTooLarge
	}
	return parseJSON[T](body)
}

// parseVaultBatch decodes and validates a batch body; it is fuzzed.
func parseVaultBatch(body []byte, wantPlain bool, max int) (VaultBatch, error) {
	b, err := parseJSON[VaultBatch](body)
	if err != nil {
		return b, err
	}
	if len(b.Items) == 0 {
		return b, fault.New(fault.Invalid, "items_missing", "items must hold at least one value")
	}
	if len(b.Items) > max {
		return b, fault.Invalidf("batch_too_large", "a batch may hold at most %d values", max)
	}
	for i := range b.Items {
		if err := checkItem(&b.Items[i], wantPlain); err != nil {
			fe := fault.As(err)
			return b, fault.New(fe.Kind, fe.Code, "items["+strconv.Itoa(i)+"]: "+fe.Message)
		}
	}
	return b, nil
}

// recordVault audits a data access: one event per request, with counts.
func (s *server) recordVault(r *http.Request, p tenancy.Principal, ws, action string, n, failed int, outcome audit.Outcome) error {
	typ, id := principalActor(p)
	return s.audit.Record(r.Context(), audit.FromRequest(r.Context(), audit.Event{ActorType: typ, ActorID: id, Workspace: ws,
		Action: action, Outcome: outcome, Time: s.now().UTC(),
		Details: map[string]string{"count": strconv.Itoa(n), "failed": strconv.Itoa(failed)}}))
}

func principalActor(p tenancy.Principal) (string, string) {
	switch {
	case p.APIKey != nil:
		return audit.ActorAPIKey, p.APIKey.ID
	case p.OperatorID != "":
		return audit.ActorOperator, p.OperatorID
	case p.UserID != "":
		return audit.ActorUser, p.UserID
	}
	return audit.ActorAnonymous, ""
}

// vaultError turns a hierarchy error on a caller's ciphertext into the
// public "cannot decrypt" (never a 500: the input was bad or its key is
// gone). Storage and other failures stay what they are.
func vaultError(err error) error {
	if errors.Is(err, vault.ErrDecrypt) || errors.Is(err, vault.ErrUnknownKeyVersion) || errors.Is(err, vault.ErrScopeDestroyed) {
		return errCannotDecrypt
	}
	return err
}

func (s *server) apiVaultEncrypt(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.vaultAuth(w, r, PermVaultEncrypt)
	if !ok {
		return
	}
	in, err := readVaultBody[VaultItem](r)
	if err == nil {
		err = checkItem(&in, true)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct, err := s.fv.SealAppend(r.Context(), nil, in.Plaintext, in.Context.ad(ws))
	if err != nil {
		s.writeError(w, r, vaultError(err))
		return
	}
	_, v, _ := vault.CiphertextVersion(ct)
	writeJSON(w, http.StatusOK, VaultResult{Ciphertext: ct, KeyVersion: v})
}

func (s *server) apiVaultDecrypt(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.vaultAuth(w, r, PermVaultDecrypt)
	if !ok {
		return
	}
	in, err := readVaultBody[VaultItem](r)
	if err == nil {
		err = checkItem(&in, false)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pt, err := s.fv.OpenAppend(r.Context(), nil, in.Ciphertext, in.Context.ad(ws))
	failed, outcome := 0, audit.Success
	if err != nil {
		failed, outcome = 1, audit.Failure
	}
	// Audited before the plaintext leaves: no record, no data (fail closed).
	if aerr := s.recordVault(r, p, ws, "vault.decrypt", 1, failed, outcome); aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	if err != nil {
		s.writeError(w, r, vaultError(err))
		return
	}
	writeJSON(w, http.StatusOK, VaultResult{Plaintext: pt})
}

func (s *server) apiVaultRewrap(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.vaultAuth(w, r, PermVaultDecrypt, PermVaultEncrypt)
	if !ok {
		return
	}
	in, err := readVaultBody[VaultItem](r)
	if err == nil {
		err = checkItem(&in, false)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct, changed, err := s.fv.Rewrap(r.Context(), in.Ciphertext, in.Context.ad(ws))
	failed, outcome := 0, audit.Success
	if err != nil {
		failed, outcome = 1, audit.Failure
	}
	if aerr := s.recordVault(r, p, ws, "vault.rewrap", 1, failed, outcome); aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	if err != nil {
		s.writeError(w, r, vaultError(err))
		return
	}
	_, v, _ := vault.CiphertextVersion(ct)
	writeJSON(w, http.StatusOK, VaultResult{Ciphertext: ct, KeyVersion: v, Rewrapped: &changed})
}

func (s *server) vaultBatch(w http.ResponseWriter, r *http.Request, wantPlain bool) (VaultBatch, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxVaultBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errBodyTooLarge
		} else {
			err = fault.Wrap(fault.Invalid, "body_unreadable", "the request body could not be read", err)
		}
	} else if len(body) > maxVaultBody {
		err = errBodyTooLarge
	}
	var b VaultBatch
	if err == nil {
		b, err = parseVaultBatch(body, wantPlain, s.maxBatch)
	}
	if err != nil {
		s.writeError(w, r, err)
		return b, false
	}
	return b, true
}

func (s *server) apiVaultEncryptBatch(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.vaultAuth(w, r, PermVaultEncrypt)
	if !ok {
		return
	}
	b, ok := s.vaultBatch(w, r, true)
	if !ok {
		return
	}
	out := VaultBatchResult{Items: make([]VaultResult, len(b.Items))}
	// One backing array for every ciphertext: one allocation per batch.
	size := 0
	for _, it := range b.Items {
		size += len(it.Plaintext) + vault.OverheadV2
	}
	buf := make([]byte, 0, size)
	for i, it := range b.Items {
		n := len(buf)
		var err error
		buf, err = s.fv.SealAppend(r.Context(), buf, it.Plaintext, it.Context.ad(ws))
		if err != nil {
			s.writeError(w, r, vaultError(err))
			return
		}
		ct := buf[n:len(buf):len(buf)]
		_, v, _ := vault.CiphertextVersion(ct)
		out.Items[i] = VaultResult{Ciphertext: ct, KeyVersion: v}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) apiVaultDecryptBatch(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.vaultAuth(w, r, PermVaultDecrypt)
	if !ok {
		return
	}
	b, ok := s.vaultBatch(w, r, false)
	if !ok {
		return
	}
	out := VaultBatchResult{Items: make([]VaultResult, len(b.Items))}
	size := 0
	for _, it := range b.Items {
		size += len(it.Ciphertext)
	}
	buf := make([]byte, 0, size)
	for i, it := range b.Items {
		n := len(buf)
		nb, err := s.fv.OpenAppend(r.Context(), buf, it.Ciphertext, it.Context.ad(ws))
		if err != nil {
			if verr := vaultError(err); verr != errCannotDecrypt {
				s.writeError(w, r, verr)
				return
			}
			out.Failed++
			out.Items[i].Error = &errorDetail{Code: errCannotDecrypt.Code, Message: errCannotDecrypt.Message}
			continue
		}
		buf = nb
		out.Items[i].Plaintext = buf[n:len(buf):len(buf)]
		if out.Items[i].Plaintext == nil {
			out.Items[i].Plaintext = []byte{}
		}
	}
	outcome := audit.Success
	if out.Failed == len(b.Items) {
		outcome = audit.Failure
	}
	if err := s.recordVault(r, p, ws, "vault.decrypt", len(b.Items), out.Failed, outcome); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) apiVaultRewrapBatch(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.vaultAuth(w, r, PermVaultDecrypt, PermVaultEncrypt)
	if !ok {
		return
	}
	b, ok := s.vaultBatch(w, r, false)
	if !ok {
		return
	}
	out := VaultBatchResult{Items: make([]VaultResult, len(b.Items))}
	for i, it := range b.Items {
		ct, changed, err := s.fv.Rewrap(r.Context(), it.Ciphertext, it.Context.ad(ws))
		if err != nil {
			if verr := vaultError(err); verr != errCannotDecrypt {
				s.writeError(w, r, verr)
				return
			}
			out.Failed++
			out.Items[i].Error = &errorDetail{Code: errCannotDecrypt.Code, Message: errCannotDecrypt.Message}
			continue
		}
		_, v, _ := vault.CiphertextVersion(ct)
		out.Items[i] = VaultResult{Ciphertext: ct, KeyVersion: v, Rewrapped: &changed}
	}
	outcome := audit.Success
	if out.Failed == len(b.Items) {
		outcome = audit.Failure
	}
	if err := s.recordVault(r, p, ws, "vault.rewrap", len(b.Items), out.Failed, outcome); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// blindIndexBody asks for the blind indexes of values in one column.
type blindIndexBody struct {
	Column string   `json:"column"`
	Values [][]byte `json:"values"`
}

func (s *server) apiVaultBlindIndex(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.vaultAuth(w, r, PermVaultEncrypt)
	if !ok {
		return
	}
	in, err := readVaultBody[blindIndexBody](r)
	if err == nil {
		switch {
		case in.Column == "" || len(in.Column) > maxVaultContextField || !utf8.ValidString(in.Column):
			err = fault.Invalidf("column_invalid", "column is required: valid UTF-8 of at most %d bytes", maxVaultContextField)
		case len(in.Values) == 0 || len(in.Values) > s.maxBatch:
			err = fault.Invalidf("values_invalid", "values must hold 1 to %d values", s.maxBatch)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Indexes [][]byte `json:"indexes"`
	}{Indexes: make([][]byte, len(in.Values))}
	for i, v := range in.Values {
		if out.Indexes[i], err = s.fv.BlindIndex(r.Context(), ws, in.Column, v); err != nil {
			s.writeError(w, r, vaultError(err))
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// vaultKeysJSON is a workspace's key state.
type vaultKeysJSON struct {
	CurrentVersion uint32    `json:"current_version"`
	MinVersion     uint32    `json:"min_version"`
	Versions       int       `json:"versions"`
	CurrentSince   time.Time `json:"current_since,omitzero"`
	RotationDue    bool      `json:"rotation_due"`
}

func (s *server) apiVaultKeys(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.vaultAuth(w, r, tenancy.PermWorkspaceRead)
	if !ok {
		return
	}
	st, err := s.keyState(r.Context(), ws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, vaultKeysJSON{CurrentVersion: st.CurrentVersion, MinVersion: st.MinVersion, Versions: st.Versions,
		CurrentSince: st.CurrentSince, RotationDue: st.RotationDue})
}

func (s *server) apiVaultRotate(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.vaultAuth(w, r, tenancy.PermWorkspaceManage)
	if !ok {
		return
	}
	v, err := s.fv.Rotate(r.Context(), ws)
	typ, id := principalActor(p)
	outcome, details := audit.Success, map[string]string{"version": strconv.FormatUint(uint64(v), 10)}
	if err != nil {
		outcome, details = audit.Failure, map[string]string{"reason": fault.As(err).Code}
	}
	if aerr := s.audit.Record(r.Context(), audit.FromRequest(r.Context(), audit.Event{ActorType: typ, ActorID: id, Workspace: ws,
		Action: "vault.rotate", Target: "workspace-kek", Outcome: outcome, Time: s.now().UTC(), Details: details})); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		s.writeError(w, r, vaultError(err))
		return
	}
	writeJSON(w, http.StatusOK, struct {
		CurrentVersion uint32 `json:"current_version"`
	}{v})
}

func (s *server) apiVaultRetire(w http.ResponseWriter, r *http.Request) {
	p, ws, ok := s.vaultAuth(w, r, tenancy.PermWorkspaceManage)
	if !ok {
		return
	}
	in, err := decodeJSON[struct {
		MinVersion uint32 `json:"min_version"`
	}](r)
	if err == nil && in.MinVersion == 0 {
		err = fault.New(fault.Invalid, "min_version_invalid", "min_version must be at least 1")
	}
	if err == nil {
		err = s.fv.Retire(r.Context(), ws, in.MinVersion)
	}
	if err != nil {
		s.writeError(w, r, vaultError(err))
		return
	}
	typ, id := principalActor(p)
	if err := s.audit.Record(r.Context(), audit.FromRequest(r.Context(), audit.Event{ActorType: typ, ActorID: id, Workspace: ws,
		Action: "vault.retire", Target: "workspace-kek", Outcome: audit.Success, Time: s.now().UTC(),
		Details: map[string]string{"min_version": strconv.FormatUint(uint64(in.MinVersion), 10)}})); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
