package audit

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// leafMagic opens every leaf. It versions the encoding (a future layout gets
// a new tag, so old and new leaves can never be confused) and separates
// these leaves from any other SHA-256 input.
const leafMagic = "rampart/audit/leaf/v1\x00"

// Leaf returns the canonical encoding of r that the Merkle tree commits to:
// the version tag, then every field in a fixed order, integers as fixed-width
// big-endian and every string or byte field with a 4-byte length prefix, and
// Keyed as a count followed by (name, value) pairs sorted by name. Because
// every variable-length field carries its length, two different records can
// never encode to the same bytes, whatever separators their values contain;
// and because the index is part of the leaf, a record moved to another
// position no longer matches the tree.
func (r Record) Leaf() []byte {
	n := len(leafMagic) + 8 + 8 + 4
	strs := r.leafStrings()
	for _, s := range strs {
		n += 4 + len(s)
	}
	n += 4 + len(r.Sealed)
	names := make([]string, 0, len(r.Keyed))
	for k, v := range r.Keyed {
		names = append(names, k)
		n += 8 + len(k) + len(v)
	}
	slices.Sort(names)

	b := make([]byte, 0, n)
	b = append(b, leafMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Index))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMicro()))
	for _, s := range strs {
		b = appendField(b, s)
	}
	b = appendField(b, r.Sealed)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, k := range names {
		b = appendField(b, k)
		b = appendField(b, r.Keyed[k])
	}
	return b
}

// leafStrings lists the string fields in leaf order. Adding a field means a
// new leafMagic version.
func (r Record) leafStrings() [10]string {
	return [10]string{r.ActorType, r.ActorID, r.Workspace, r.Action, r.Target,
		string(r.Outcome), r.IP, r.UserAgent, r.RequestID, r.TraceID}
}

func appendField[T string | []byte](b []byte, v T) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// LeafHash is the RFC 6962 leaf hash of r: SHA-256(0x00 || r.Leaf()).
func (r Record) LeafHash() tlog.Hash { return tlog.RecordHash(r.Leaf()) }

var errLeaf = errors.New("audit: malformed leaf")

// ParseLeaf decodes a leaf produced by Record.Leaf. It exists so an outside
// verifier holding only leaves can read them back, and so the encoding's
// injectivity is checked by a fuzzer: ParseLeaf(Leaf(r)) must give r back
// and re-encode to the same bytes.
func ParseLeaf(b []byte) (Record, error) {
	var r Record
	if len(b) < len(leafMagic) || string(b[:len(leafMagic)]) != leafMagic {
		return r, errLeaf
	}
	b = b[len(leafMagic):]
	if len(b) < 16 {
		return r, errLeaf
	}
	r.Index = int64(binary.BigEndian.Uint64(b))
	r.Time = time.UnixMicro(int64(binary.BigEndian.Uint64(b[8:]))).UTC()
	b = b[16:]
	var strs [10]string
	for i := range strs {
		f, rest, ok := cutField(b)
		if !ok {
			return r, errLeaf
		}
		strs[i], b = string(f), rest
	}
	r.ActorType, r.ActorID, r.Workspace, r.Action, r.Target = strs[0], strs[1], strs[2], strs[3], strs[4]
	r.Outcome, r.IP, r.UserAgent, r.RequestID, r.TraceID = Outcome(strs[5]), strs[6], strs[7], strs[8], strs[9]
	sealed, b, ok := cutField(b)
	if !ok {
		return r, errLeaf
	}
	if len(sealed) > 0 {
		r.Sealed = sealed
	}
	if len(b) < 4 {
		return r, errLeaf
	}
	count := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(count) > uint64(len(b))/8 {
		return r, errLeaf
	}
	prev := ""
	for i := range count {
		k, rest, ok := cutField(b)
		if !ok {
			return r, errLeaf
		}
		v, rest, ok := cutField(rest)
		if !ok {
			return r, errLeaf
		}
		// Names must be strictly ascending: any other order (or a
		// duplicate) is not what Leaf produces, and accepting it would
		// give one record two encodings.
		if i > 0 && string(k) <= prev {
			return r, errLeaf
		}
		if r.Keyed == nil {
			r.Keyed = make(map[string][]byte, count)
		}
		prev = string(k)
		r.Keyed[prev] = v
		b = rest
	}
	if len(b) != 0 {
		return r, errLeaf
	}
	return r, nil
}

func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}
