package main

import (
	"context"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// How the console reads large collections. Every read is the user's own
// (their token, their RBAC) and is for display only: what a page shows
// decides nothing. Whether the user may activate, approve or see is
// decided by the API server and kubepim's webhooks when the user acts.
//
// My roles, Activate and My requests ask the API server for the user's own
// objects only, with the CRDs' selectable fields (a field selector, as
// `kubectl get --field-selector` would): one list per subject the user is
// (their name, and each of their groups), instead of every RoleAssignment
// in the cluster filtered here. Every other large list is read in pages of
// listPageSize with the API's limit and continue token.

// The selectable fields the console selects on (config/crd/bases).
const (
	fieldSubjectKind = "spec.subject.kind"
	fieldSubjectName = "spec.subject.name"
	fieldRoleName    = "spec.roleRef.name"
	fieldRequester   = "spec.requester.username"
)

// listPageSize is how many objects one list call asks for.
const listPageSize = 500

// maxSubjectLists bounds the field-selected lists of one page view: a
// user in more groups than that (an Entra ID user can be in hundreds) gets
// one paged list of every RoleAssignment instead, filtered here.
const maxSubjectLists = 16

// parallelLists is how many of those lists run at once.
const parallelLists = 4

// subjectSelectors are the field selectors of the RoleAssignments whose
// subject the user is, or nil when there are too many.
func subjectSelectors(me pimv1.UserInfo) []client.MatchingFields {
	sels := []client.MatchingFields{{fieldSubjectKind: pimv1.SubjectKindUser, fieldSubjectName: me.Username}}
	if rest, ok := strings.CutPrefix(me.Username, "system:serviceaccount:"); ok {
		if _, name, ok := strings.Cut(rest, ":"); ok {
			// The namespace is not selectable: SubjectMatches checks it.
			sels = append(sels, client.MatchingFields{fieldSubjectKind: pimv1.SubjectKindServiceAccount, fieldSubjectName: name})
		}
	}
	groups := slices.Clone(me.Groups)
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		sels = append(sels, client.MatchingFields{fieldSubjectKind: pimv1.SubjectKindGroup, fieldSubjectName: g})
	}
	if len(sels) > maxSubjectLists {
		return nil
	}
	return sels
}

// myAssignments returns the RoleAssignments whose subject is the user
// (directly, as a ServiceAccount or through a group) that the user may
// list, in no particular order.
func myAssignments(ctx context.Context, c client.Client, me pimv1.UserInfo) ([]pimv1.RoleAssignment, error) {
	sels := subjectSelectors(me)
	if sels == nil {
		return allAssignments(ctx, c, me)
	}
	results := make([][]pimv1.RoleAssignment, len(sels))
	errs := make([]error, len(sels))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelLists)
	for i, sel := range sels {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = assignmentsWhere(ctx, c, sel)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if apierrors.IsBadRequest(err) {
			// An API server whose CRD has no such selectable field yet
			// (the CRDs not upgraded): read them all.
			return allAssignments(ctx, c, me)
		}
		if err != nil {
			return nil, err
		}
	}
	var out []pimv1.RoleAssignment
	for _, r := range results {
		for i := range r {
			// The selector already chose them; this also checks a
			// ServiceAccount's namespace.
			if policy.SubjectMatches(r[i].Spec.Subject, me) {
				out = append(out, r[i])
			}
		}
	}
	return out, nil
}

// allAssignments is myAssignments the slow way: every RoleAssignment, page
// by page, filtered here.
func allAssignments(ctx context.Context, c client.Client, me pimv1.UserInfo) ([]pimv1.RoleAssignment, error) {
	var out []pimv1.RoleAssignment
	err := eachPage(ctx, c, newAssignmentList, func(l *pimv1.RoleAssignmentList) {
		for _, ra := range l.Items {
			if policy.SubjectMatches(ra.Spec.Subject, me) {
				out = append(out, ra)
			}
		}
	})
	return out, err
}

// myRequestList returns the user's own ActivationRequests (spec.requester,
// stamped by kubepim's webhook from the authenticated user).
func myRequestList(ctx context.Context, c client.Client, me pimv1.UserInfo) ([]pimv1.ActivationRequest, error) {
	items, err := requestsWhere(ctx, c, client.MatchingFields{fieldRequester: me.Username})
	if apierrors.IsBadRequest(err) {
		// No such selectable field (the CRDs not upgraded): all of them,
		// filtered by mine.
		items, err = requestsWhere(ctx, c)
	}
	return items, err
}

// eachPage lists page by page (listPageSize objects at most per call),
// calling fn with each page, a fresh list every time.
func eachPage[L client.ObjectList](ctx context.Context, c client.Client, newList func() L, fn func(L), opts ...client.ListOption) error {
	cont := ""
	for {
		list := newList()
		o := append(slices.Clip(opts), client.Limit(listPageSize), client.Continue(cont))
		if err := c.List(ctx, list, o...); err != nil {
			return err
		}
		fn(list)
		if cont = list.GetContinue(); cont == "" {
			return nil
		}
	}
}

func newAssignmentList() *pimv1.RoleAssignmentList { return &pimv1.RoleAssignmentList{} }
func newRequestList() *pimv1.ActivationRequestList { return &pimv1.ActivationRequestList{} }

// assignmentsWhere is every RoleAssignment opts select.
func assignmentsWhere(ctx context.Context, c client.Client, opts ...client.ListOption) ([]pimv1.RoleAssignment, error) {
	var out []pimv1.RoleAssignment
	err := eachPage(ctx, c, newAssignmentList, func(l *pimv1.RoleAssignmentList) { out = append(out, l.Items...) }, opts...)
	return out, err
}

// requestsWhere is every ActivationRequest opts select.
func requestsWhere(ctx context.Context, c client.Client, opts ...client.ListOption) ([]pimv1.ActivationRequest, error) {
	var out []pimv1.ActivationRequest
	err := eachPage(ctx, c, newRequestList, func(l *pimv1.ActivationRequestList) { out = append(out, l.Items...) }, opts...)
	return out, err
}
