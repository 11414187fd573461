package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
)

// ipKeyedName is the Keyed name of the event's address when HashIPs is set.
const ipKeyedName = "ip"

// detailKeyedPrefix marks a sensitive detail whose name collides with a
// field's keyed name ("ip"), so the two can be told apart when read back.
const detailKeyedPrefix = "detail:"

// keyedShownBytes is how much of a keyed hash a decrypted event shows:
// enough to see that two events share a value, too little to serve as an
// index on its own.
const keyedShownBytes = 8

// keyer computes the keyed hashes. HMAC state is cheap to create, so each
// call builds its own: no shared mutable state between concurrent callers.
type keyer struct{ key []byte }

func (k keyer) mac() hash.Hash { return hmac.New(sha256.New, k.key) }

// sum is HMAC-SHA-256(key, name || 0x00 || value). The zero byte separates
// name and value (names never contain one), so ("ab","c") and ("a","bc")
// differ, and the name makes equal values under different names unrelated.
func (k keyer) sum(name, value string) []byte {
	m := k.mac()
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return m.Sum(nil)
}

// KeyedHash returns the keyed hash stored for a sensitive value, for exact
// searches (Query.KeyedName/KeyedValue): the value itself is never stored.
func (m *MerkleLog) KeyedHash(name, value string) []byte {
	return m.keyer.sum(name, value)
}

func showKeyed(v []byte) string {
	return "hmac:" + hex.EncodeToString(v[:min(len(v), keyedShownBytes)])
}

// splitSensitive moves the sensitive details out of details (which is left
// with what gets sealed) into keyed hashes; ip is the event's address, keyed
// under "ip" when hashIP is set.
func (m *MerkleLog) splitSensitive(details map[string]string, ip string) (sealed map[string]string, keyed map[string][]byte, clearIP string) {
	clearIP = ip
	if m.cfg.HashIPs && ip != "" {
		keyed = map[string][]byte{ipKeyedName: m.keyer.sum(ipKeyedName, ip)}
		clearIP = ""
	}
	for k, v := range details {
		if !m.sensitive[k] {
			if sealed == nil {
				sealed = make(map[string]string, len(details))
			}
			sealed[k] = v
			continue
		}
		if keyed == nil {
			keyed = make(map[string][]byte)
		}
		name := k
		if name == ipKeyedName || strings.HasPrefix(name, detailKeyedPrefix) {
			name = detailKeyedPrefix + k
		}
		keyed[name] = m.keyer.sum(k, v)
	}
	return sealed, keyed, clearIP
}

// restoreKeyed shows keyed values in a decrypted event.
func restoreKeyed(e *Event, keyed map[string][]byte) {
	for name, v := range keyed {
		if name == ipKeyedName {
			if e.IP == "" {
				e.IP = showKeyed(v)
			}
			continue
		}
		if e.Details == nil {
			e.Details = make(map[string]string, len(keyed))
		}
		e.Details[strings.TrimPrefix(name, detailKeyedPrefix)] = showKeyed(v)
	}
}
