package client

import (
	"context"
	"errors"
	"net/url"
)

// FieldContext says where an encrypted value is stored. The ciphertext is
// bound to it (and to the workspace): it decrypts only under the same
// table, column and row, so a value copied to another row is refused. Row
// should be the row's stable primary key.
type FieldContext struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	Row    string `json:"row"`
}

// Sealed is an encrypted value and the workspace key version it was
// encrypted under.
type Sealed struct {
	Ciphertext []byte
	KeyVersion uint32
}

// Field is one value of a batch: plaintext for EncryptBatch, ciphertext
// for DecryptBatch and Rewrap.
type Field struct {
	Value   []byte
	Context FieldContext
}

// ErrCannotDecrypt is returned (wrapped in *Error, Code "cannot_decrypt")
// when a ciphertext is malformed, altered, bound to another context, or
// its key was retired or destroyed.
var ErrCannotDecrypt = errors.New("rampart: cannot decrypt")

type fieldItem struct {
	Plaintext  []byte       `json:"plaintext,omitempty"`
	Ciphertext []byte       `json:"ciphertext,omitempty"`
	Context    FieldContext `json:"context"`
}

type fieldResult struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
	KeyVersion uint32 `json:"key_version"`
	Rewrapped  *bool  `json:"rewrapped"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type batchResult struct {
	Items  []fieldResult `json:"items"`
	Failed int           `json:"failed"`
}

func vaultPath(workspace, op string) string {
	return "/v1/workspaces/" + url.PathEscape(workspace) + "/vault/" + op
}

// Encrypt encrypts plaintext with the workspace's current key (needs an
// API key holding vault.encrypt).
func (c *Client) Encrypt(ctx context.Context, workspace string, plaintext []byte, fc FieldContext) (Sealed, error) {
	var out fieldResult
	if plaintext == nil {
		plaintext = []byte{}
	}
	err := c.do(ctx, "POST", vaultPath(workspace, "encrypt"), fieldItem{Plaintext: plaintext, Context: fc}, &out)
	return Sealed{Ciphertext: out.Ciphertext, KeyVersion: out.KeyVersion}, err
}

// Decrypt decrypts a ciphertext from Encrypt under the same context
// (needs vault.decrypt; every call is audited in the workspace's trail).
func (c *Client) Decrypt(ctx context.Context, workspace string, ciphertext []byte, fc FieldContext) ([]byte, error) {
	var out fieldResult
	err := c.do(ctx, "POST", vaultPath(workspace, "decrypt"), fieldItem{Ciphertext: ciphertext, Context: fc}, &out)
	if err != nil {
		return nil, cannotDecrypt(err)
	}
	if out.Plaintext == nil {
		out.Plaintext = []byte{}
	}
	return out.Plaintext, nil
}

func cannotDecrypt(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Code == "cannot_decrypt" {
		return errors.Join(ErrCannotDecrypt, err)
	}
	return err
}

// EncryptBatch encrypts many values in one call (up to the server's batch
// limit, 1000 by default); results are in input order.
func (c *Client) EncryptBatch(ctx context.Context, workspace string, fields []Field) ([]Sealed, error) {
	in := struct {
		Items []fieldItem `json:"items"`
	}{Items: make([]fieldItem, len(fields))}
	for i, f := range fields {
		v := f.Value
		if v == nil {
			v = []byte{}
		}
		in.Items[i] = fieldItem{Plaintext: v, Context: f.Context}
	}
	var out batchResult
	if err := c.do(ctx, "POST", vaultPath(workspace, "encrypt/batch"), in, &out); err != nil {
		return nil, err
	}
	res := make([]Sealed, len(out.Items))
	for i, it := range out.Items {
		res[i] = Sealed{Ciphertext: it.Ciphertext, KeyVersion: it.KeyVersion}
	}
	return res, nil
}

// Opened is one result of DecryptBatch: the plaintext, or Err
// (ErrCannotDecrypt) for a value that could not be decrypted.
type Opened struct {
	Plaintext []byte
	Err       error
}

// DecryptBatch decrypts many values in one call, audited as one event with
// the count. A value that cannot be decrypted fails alone.
func (c *Client) DecryptBatch(ctx context.Context, workspace string, fields []Field) ([]Opened, error) {
	out, err := c.ciphertextBatch(ctx, workspace, "decrypt/batch", fields)
	if err != nil {
		return nil, err
	}
	res := make([]Opened, len(out.Items))
	for i, it := range out.Items {
		if it.Error != nil {
			res[i].Err = ErrCannotDecrypt
			continue
		}
		res[i].Plaintext = it.Plaintext
		if res[i].Plaintext == nil {
			res[i].Plaintext = []byte{}
		}
	}
	return res, nil
}

// Rewrapped is one result of Rewrap: the value under the current key
// version (Changed false when it already was), or Err.
type Rewrapped struct {
	Sealed
	Changed bool
	Err     error
}

// Rewrap re-encrypts values under the workspace's current key version
// without returning plaintext (needs vault.encrypt and vault.decrypt). Use
// it after a rotation to move stored values forward before old versions
// are retired.
func (c *Client) Rewrap(ctx context.Context, workspace string, fields []Field) ([]Rewrapped, error) {
	out, err := c.ciphertextBatch(ctx, workspace, "rewrap/batch", fields)
	if err != nil {
		return nil, err
	}
	res := make([]Rewrapped, len(out.Items))
	for i, it := range out.Items {
		if it.Error != nil {
			res[i].Err = ErrCannotDecrypt
			continue
		}
		res[i].Sealed = Sealed{Ciphertext: it.Ciphertext, KeyVersion: it.KeyVersion}
		res[i].Changed = it.Rewrapped != nil && *it.Rewrapped
	}
	return res, nil
}

func (c *Client) ciphertextBatch(ctx context.Context, workspace, op string, fields []Field) (batchResult, error) {
	in := struct {
		Items []fieldItem `json:"items"`
	}{Items: make([]fieldItem, len(fields))}
	for i, f := range fields {
		in.Items[i] = fieldItem{Ciphertext: f.Value, Context: f.Context}
	}
	var out batchResult
	err := c.do(ctx, "POST", vaultPath(workspace, op), in, &out)
	if err == nil && len(out.Items) != len(fields) {
		err = errors.New("rampart: batch answer has the wrong number of items")
	}
	return out, err
}

// BlindIndex returns keyed indexes (HMAC-SHA256 under a per-workspace key
// that never leaves Rampart) of values in column: store them beside the
// ciphertext and search by equality without storing the value. Needs
// vault.encrypt.
func (c *Client) BlindIndex(ctx context.Context, workspace, column string, values ...[]byte) ([][]byte, error) {
	in := struct {
		Column string   `json:"column"`
		Values [][]byte `json:"values"`
	}{Column: column, Values: values}
	for i, v := range in.Values {
		if v == nil {
			in.Values[i] = []byte{}
		}
	}
	var out struct {
		Indexes [][]byte `json:"indexes"`
	}
	if err := c.do(ctx, "POST", vaultPath(workspace, "blind-index"), in, &out); err != nil {
		return nil, err
	}
	if len(out.Indexes) != len(values) {
		return nil, errors.New("rampart: blind-index answer has the wrong number of items")
	}
	return out.Indexes, nil
}
