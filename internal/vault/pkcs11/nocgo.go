//go:build !cgo

// Package pkcs11 keeps Rampart's root key in a PKCS#11 HSM. This build has
// no cgo, so the HSM source is unavailable and refuses to start.
package pkcs11

import (
	"context"
	"io"

	"github.com/rampartsec/rampart/internal/fault"
)

// Config locates the key.
type Config struct {
	Module, TokenLabel, PIN, KeyLabel string
	Rand                              io.Reader
}

// Root is unavailable without cgo.
type Root struct{}

var errNoCgo = fault.New(fault.Internal, "pkcs11_unavailable", "PKCS#11 needs a build with cgo enabled")

// Open always fails in a build without cgo.
func Open(Config) (*Root, error) { return nil, errNoCgo }

// GenerateKey always fails in a build without cgo.
func GenerateKey(Config) error { return errNoCgo }

func (*Root) ID() string     { return "" }
func (*Root) Source() string { return "pkcs11" }
func (*Root) Wrap(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errNoCgo
}
func (*Root) Unwrap(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errNoCgo
}
func (*Root) Close() {}
