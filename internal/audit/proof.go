package audit

import (
	"context"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/fault"
)

// InclusionProof proves that record index is in the tree of the given size:
// it returns the record's leaf hash and the RFC 6962 audit path, which
// tlog.CheckRecord(proof, size, root, index, leaf) checks against a
// checkpoint's root.
func (m *MerkleLog) InclusionProof(ctx context.Context, index, size int64) (tlog.Hash, tlog.RecordProof, error) {
	if err := m.checkSize(ctx, size); err != nil {
		return tlog.Hash{}, nil, err
	}
	if index < 0 || index >= size {
		return tlog.Hash{}, nil, fault.Invalidf("audit_proof_range", "index %d is not in a tree of size %d", index, size)
	}
	hr := storeHashes{ctx, m.d.Store}
	leaf, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
	if err != nil {
		return tlog.Hash{}, nil, err
	}
	p, err := tlog.ProveRecord(size, index, hr)
	if err != nil {
		return tlog.Hash{}, nil, err
	}
	return leaf[0], p, nil
}

// ConsistencyProof proves that the tree of size from is a prefix of the tree
// of size to (the log only grew); tlog.CheckTree(proof, to, rootTo, from,
// rootFrom) checks it.
func (m *MerkleLog) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	if err := m.checkSize(ctx, to); err != nil {
		return nil, err
	}
	if from <= 0 || from > to {
		return nil, fault.Invalidf("audit_proof_range", "no consistency proof from size %d to %d", from, to)
	}
	return tlog.ProveTree(to, from, storeHashes{ctx, m.d.Store})
}

func (m *MerkleLog) checkSize(ctx context.Context, size int64) error {
	n, err := m.d.Store.AuditSize(ctx)
	if err != nil {
		return err
	}
	if size <= 0 || size > n {
		return fault.Invalidf("audit_proof_range", "tree size %d is not between 1 and %d", size, n)
	}
	return nil
}
