package app

import (
	"context"
	"time"

	"github.com/rampartsec/rampart/internal/tenancy"
)

// ReviewStatus is one workspace's access-review standing, for the
// operator's `rampart access-review`: dates and counts only, no member data.
type ReviewStatus struct {
	WorkspaceID string
	Name        string
	Members     int
	LastReview  time.Time // zero if never reviewed
	DueAt       time.Time
	Overdue     bool
}

// ReviewStatuses lists every workspace's review standing.
func (a *App) ReviewStatuses(ctx context.Context) ([]ReviewStatus, error) {
	all, err := a.Store.AllWorkspaces(ctx)
	if err != nil {
		return nil, err
	}
	now := a.now()
	every := a.Config.Tenancy.ReviewEvery
	out := make([]ReviewStatus, 0, len(all))
	for _, w := range all {
		reviews, err := a.Store.ListAccessReviews(ctx, w.ID)
		if err != nil {
			return nil, err
		}
		members, err := a.Store.ListMembers(ctx, w.ID)
		if err != nil {
			return nil, err
		}
		st := ReviewStatus{WorkspaceID: w.ID, Name: w.Name, Members: len(members), DueAt: w.CreatedAt.Add(every)}
		for _, r := range reviews {
			if r.CreatedAt.After(st.LastReview) {
				st.LastReview = r.CreatedAt
			}
		}
		if !st.LastReview.IsZero() {
			st.DueAt = st.LastReview.Add(every)
		}
		st.Overdue = !now.Before(st.DueAt)
		out = append(out, st)
	}
	return out, nil
}

// AddOperator marks an existing account as operator staff (AC-6, AC-7).
func (a *App) AddOperator(ctx context.Context, email string, networks []string) (*tenancy.Operator, error) {
	return a.Tenancy.AddOperator(ctx, email, networks)
}
