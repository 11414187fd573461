//go:build cgo

// Package pkcs11 keeps Rampart's root key in a PKCS#11 HSM (ENC-1): the
// AES-256 key never leaves the token, and key-encryption keys are wrapped
// and unwrapped by the HSM with CKM_AES_GCM. Tested against SoftHSM2.
package pkcs11

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	p11 "github.com/miekg/pkcs11"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

// Config locates the key: the module (.so), the token by label, the user
// PIN and the key's CKA_LABEL.
type Config struct {
	Module, TokenLabel, PIN, KeyLabel string
	Rand                              io.Reader
}

const (
	nonceSize = 12
	tagBits   = 128
)

// Root is a vault.RootWrapper backed by an AES key inside an HSM. One
// session is shared under a mutex: PKCS#11 sessions are not safe for
// concurrent use, and wrapping happens only when keys are loaded.
type Root struct {
	mu      sync.Mutex
	ctx     *p11.Ctx
	session p11.SessionHandle
	key     p11.ObjectHandle
	id      string
	rand    io.Reader
	owner   bool // this Root initialised the module and finalises it
}

// initialize initialises the module, tolerating a module another Root (or
// GenerateKey) in this process already initialised: PKCS#11 allows one
// initialisation per process, and only its owner finalises.
func initialize(ctx *p11.Ctx) (owner bool, err error) {
	err = ctx.Initialize()
	var e p11.Error
	if errors.As(err, &e) && e == p11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
		return false, nil
	}
	if err != nil {
		return false, hsmErr("initialize", err)
	}
	return true, nil
}

var _ vault.RootWrapper = (*Root)(nil)

func hsmErr(what string, err error) error {
	return fault.Wrap(fault.Internal, "pkcs11", "PKCS#11: "+what, err)
}

// Open loads the module, logs in to the token and finds the key. It fails
// closed: a missing module, token, key or a wrong PIN is an error.
func Open(c Config) (*Root, error) {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	ctx := p11.New(c.Module)
	if ctx == nil {
		return nil, fault.New(fault.Internal, "pkcs11", "PKCS#11: cannot load module "+c.Module)
	}
	owner, err := initialize(ctx)
	if err != nil {
		ctx.Destroy()
		return nil, err
	}
	r := &Root{ctx: ctx, rand: c.Rand, owner: owner}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	slot, err := findSlot(ctx, c.TokenLabel)
	if err != nil {
		return nil, err
	}
	r.session, err = ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return nil, hsmErr("open session", err)
	}
	if err := ctx.Login(r.session, p11.CKU_USER, c.PIN); err != nil {
		// Login state is per token and process: a second Root in this
		// process finds the token logged in already.
		var e p11.Error
		if !errors.As(err, &e) || e != p11.CKR_USER_ALREADY_LOGGED_IN || r.owner {
			return nil, hsmErr("login (check the PIN)", err)
		}
	}
	objs, err := findKeys(ctx, r.session, c.KeyLabel)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fault.New(fault.Internal, "pkcs11", fmt.Sprintf("PKCS#11: want exactly one AES key labelled %q on token %q, found %d", c.KeyLabel, c.TokenLabel, len(objs)))
	}
	r.key = objs[0]
	kcv, err := r.checkValue()
	if err != nil {
		return nil, err
	}
	r.id = "pkcs11:" + kcv
	ok = true
	return r, nil
}

func findSlot(ctx *p11.Ctx, label string) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, hsmErr("list slots", err)
	}
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && ti.Label == label {
			return s, nil
		}
	}
	return 0, fault.New(fault.Internal, "pkcs11", fmt.Sprintf("PKCS#11: no token labelled %q", label))
}

func findKeys(ctx *p11.Ctx, sh p11.SessionHandle, label string) ([]p11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}); err != nil {
		return nil, hsmErr("find key", err)
	}
	objs, _, err := ctx.FindObjects(sh, 4)
	_ = ctx.FindObjectsFinal(sh)
	if err != nil {
		return nil, hsmErr("find key", err)
	}
	return objs, nil
}

// GenerateKey creates a non-extractable, sensitive AES-256 token key with
// label, for set-up and tests. It refuses when such a key exists already.
func GenerateKey(c Config) error {
	ctx := p11.New(c.Module)
	if ctx == nil {
		return fault.New(fault.Internal, "pkcs11", "PKCS#11: cannot load module "+c.Module)
	}
	defer ctx.Destroy()
	owner, err := initialize(ctx)
	if err != nil {
		return err
	}
	if owner {
		defer ctx.Finalize()
	}
	slot, err := findSlot(ctx, c.TokenLabel)
	if err != nil {
		return err
	}
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return hsmErr("open session", err)
	}
	defer ctx.CloseSession(sh)
	if err := ctx.Login(sh, p11.CKU_USER, c.PIN); err != nil {
		var e p11.Error
		if !errors.As(err, &e) || e != p11.CKR_USER_ALREADY_LOGGED_IN || owner {
			return hsmErr("login", err)
		}
	}
	if owner {
		defer ctx.Logout(sh)
	}
	if objs, err := findKeys(ctx, sh, c.KeyLabel); err != nil || len(objs) > 0 {
		if err == nil {
			err = fault.Conflictf("pkcs11_key_exists", "a key labelled %q exists already", c.KeyLabel)
		}
		return err
	}
	_, err = ctx.GenerateKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		p11.NewAttribute(p11.CKA_LABEL, c.KeyLabel),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
	})
	if err != nil {
		return hsmErr("generate key", err)
	}
	return nil
}

// checkValue is the key check value pinned in the database: SHA-256 of the
// GCM tag the HSM computes for an empty message with a fixed, never
// otherwise used nonce and a fixed label, first 16 hex digits. It depends
// only on the key and reveals nothing usable about it.
func (r *Root) checkValue() (string, error) {
	iv := make([]byte, nonceSize) // all zero; random nonces are never all zero in practice
	tag, err := r.gcm(true, iv, nil, []byte("rampart root key check value"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(tag)
	return hex.EncodeToString(sum[:])[:16], nil
}

func (r *Root) gcm(encrypt bool, iv, data, ad []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	params := p11.NewGCMParams(iv, ad, tagBits)
	defer params.Free()
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_GCM, params)}
	if encrypt {
		if err := r.ctx.EncryptInit(r.session, mech, r.key); err != nil {
			return nil, hsmErr("encrypt", err)
		}
		out, err := r.ctx.Encrypt(r.session, data)
		if err != nil {
			return nil, hsmErr("encrypt", err)
		}
		return out, nil
	}
	if err := r.ctx.DecryptInit(r.session, mech, r.key); err != nil {
		return nil, hsmErr("decrypt", err)
	}
	out, err := r.ctx.Decrypt(r.session, data)
	if err != nil {
		return nil, vault.ErrDecrypt
	}
	return out, nil
}

// ID implements vault.RootWrapper: "pkcs11:" and the key check value.
func (r *Root) ID() string { return r.id }

// Source implements vault.RootWrapper.
func (r *Root) Source() string { return "pkcs11" }

// Wrap implements vault.RootWrapper: nonce || HSM AES-GCM(key) with ad.
func (r *Root) Wrap(_ context.Context, key, ad []byte) ([]byte, error) {
	iv := make([]byte, nonceSize)
	if _, err := io.ReadFull(r.rand, iv); err != nil {
		return nil, fault.Wrap(fault.Internal, "nonce", "could not generate nonce", err)
	}
	ct, err := r.gcm(true, iv, key, ad)
	if err != nil {
		return nil, err
	}
	return append(iv, ct...), nil
}

// Unwrap implements vault.RootWrapper.
func (r *Root) Unwrap(_ context.Context, wrapped, ad []byte) ([]byte, error) {
	if len(wrapped) < nonceSize+tagBits/8 {
		return nil, fault.Wrap(fault.Internal, "decryption_failed", "decryption failed", vault.ErrDecrypt)
	}
	pt, err := r.gcm(false, wrapped[:nonceSize], wrapped[nonceSize:], ad)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "decryption_failed", "decryption failed", vault.ErrDecrypt)
	}
	return pt, nil
}

// Close logs out and unloads the module.
func (r *Root) Close() {
	if r.ctx == nil {
		return
	}
	if r.session != 0 {
		if r.owner {
			_ = r.ctx.Logout(r.session)
		}
		_ = r.ctx.CloseSession(r.session)
	}
	if r.owner {
		_ = r.ctx.Finalize()
	}
	r.ctx.Destroy()
	r.ctx = nil
}
