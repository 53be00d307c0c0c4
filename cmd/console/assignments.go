package main

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// The Assignments page is for platform admins: it lists the
// RoleAssignments by role, adds an Eligible or Active one and removes one,
// all as the user. RBAC decides who may create and delete
// RoleAssignments (kubepim-admin), and kubepim's webhooks stamp
// spec.assignedBy and apply the role's assignment policy and the
// escalation guard, exactly as for `kubectl create -f`: the console
// checks nothing itself and shows their refusal as given.

// assignmentForm is the add form, as typed.
type assignmentForm struct {
	SubjectKind, Subject, SubjectNamespace string
	RoleKind, Role, Namespace, Type        string
	Start, End, Justification              string
}

// roleGroup is one role's assignments.
type roleGroup struct {
	Role, Kind  string
	Assignments []*pimv1.RoleAssignment
}

type assignmentsView struct {
	Form   assignmentForm
	Groups []roleGroup
	// Roles are the roles with a RoleSetting, for the form's suggestions.
	Roles []string
	// Filter is the role the list is limited to.
	Filter string
	// Total is how many assignments this page shows.
	Total int
	// Next and Previous link to the next and previous pages ("" when
	// there is none), FirstURL to the first; First says this is it.
	Next, Previous, FirstURL string
	First                    bool
	// MayNotWrite: RBAC does not let the user create RoleAssignments (a
	// SelfSubjectAccessReview says so); the form stays, and the refusal
	// will come from the API server.
	MayNotWrite bool
}

// maxPagesBack is how many pages back the Previous links go: the
// continue tokens of the pages before travel in the links themselves
// (no state on the server, no script), and only the newest are kept.
const maxPagesBack = 20

func (s *Server) assignmentsPage(q *request) {
	f := assignmentForm{SubjectKind: pimv1.SubjectKindUser, RoleKind: pimv1.RoleKindClusterRole, Type: pimv1.AssignmentEligible,
		Role: strings.TrimSpace(q.r.URL.Query().Get("role"))}
	s.showAssignments(q, http.StatusOK, f, "")
}

// showAssignments shows one page of RoleAssignments: AssignmentPageSize
// of them at most, in the API's order (by name), grouped by role on the
// page; with a role filter, only that role's (the spec.roleRef.name
// selectable field, so the API server selects them).
func (s *Server) showAssignments(q *request, status int, f assignmentForm, errMsg string) {
	ctx := q.r.Context()
	query := q.r.URL.Query()
	v := assignmentsView{Form: f, Filter: strings.TrimSpace(query.Get("role"))}
	cont := query.Get("continue")
	back := query["back"]
	if len(back) > maxPagesBack {
		back = back[len(back)-maxPagesBack:]
	}
	link := func(cont string, back []string) string {
		p := url.Values{}
		if v.Filter != "" {
			p.Set("role", v.Filter)
		}
		if cont != "" {
			p.Set("continue", cont)
			p["back"] = back
		}
		if len(p) == 0 {
			return "/assignments"
		}
		return "/assignments?" + p.Encode()
	}
	v.First, v.FirstURL = cont == "", link("", nil)
	if !v.First {
		if len(back) > 0 {
			v.Previous = link(back[len(back)-1], back[:len(back)-1])
		} else {
			v.Previous = v.FirstURL
		}
	}
	opts := []client.ListOption{client.Limit(int64(s.opts.AssignmentPageSize)), client.Continue(cont)}
	if v.Filter != "" {
		opts = append(opts, client.MatchingFields{fieldRoleName: v.Filter})
	}
	var list pimv1.RoleAssignmentList
	err := q.c.List(ctx, &list, opts...)
	if apierrors.IsBadRequest(err) && v.Filter != "" {
		// No such selectable field (the CRDs not upgraded): this page of
		// every role's, filtered below.
		err = q.c.List(ctx, &list, opts[:2]...)
	}
	if err != nil {
		switch {
		case apierrors.IsForbidden(err):
			q.page(s, http.StatusForbidden, "assignments", page{Title: "Assignments", Nav: "assignments", Data: v,
				Error: "You may not list RoleAssignments: this page is for kubepim's administrators (the kubepim-admin role). The Kubernetes API server said: " + err.Error()})
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			q.page(s, http.StatusGone, "assignments", page{Title: "Assignments", Nav: "assignments", Data: v,
				Error: "The list has changed too much since the previous page was read (its continue token expired). Start again from the first page."})
		default:
			s.apiError(q, err)
		}
		return
	}
	if list.Continue != "" {
		next := back
		if cont != "" {
			next = append(slices.Clip(back), cont)
		}
		if len(next) > maxPagesBack {
			next = next[len(next)-maxPagesBack:]
		}
		v.Next = link(list.Continue, next)
	}
	ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: pimv1.GroupVersion.Group, Resource: "roleassignments", Verb: "create"}}}
	if err := q.c.Create(ctx, ssar); err == nil {
		v.MayNotWrite = !ssar.Status.Allowed
	}
	var settings pimv1.RoleSettingList
	if err := q.c.List(ctx, &settings); err == nil {
		for _, rs := range settings.Items {
			if !slices.Contains(v.Roles, rs.Spec.RoleRef.Name) {
				v.Roles = append(v.Roles, rs.Spec.RoleRef.Name)
			}
		}
		slices.Sort(v.Roles)
	}
	groups := map[string]*roleGroup{}
	for i := range list.Items {
		ra := &list.Items[i]
		if v.Filter != "" && ra.Spec.RoleRef.Name != v.Filter {
			continue
		}
		key := ra.Spec.RoleRef.Kind + "/" + ra.Spec.RoleRef.Name
		g := groups[key]
		if g == nil {
			g = &roleGroup{Role: ra.Spec.RoleRef.Name, Kind: ra.Spec.RoleRef.Kind}
			groups[key] = g
		}
		g.Assignments = append(g.Assignments, ra)
		v.Total++
	}
	for _, g := range groups {
		slices.SortFunc(g.Assignments, func(a, b *pimv1.RoleAssignment) int {
			return cmp.Or(cmp.Compare(a.Spec.Namespace, b.Spec.Namespace), cmp.Compare(a.Spec.Subject.Name, b.Spec.Subject.Name))
		})
		v.Groups = append(v.Groups, *g)
	}
	slices.SortFunc(v.Groups, func(a, b roleGroup) int { return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Kind, b.Kind)) })
	q.page(s, status, "assignments", page{Title: "Assignments", Nav: "assignments", Data: v, Error: errMsg})
}

// addAssignment creates a RoleAssignment as the user.
func (s *Server) addAssignment(q *request) {
	p := q.r.PostForm
	f := assignmentForm{}
	for _, fld := range []struct {
		key  string
		into *string
	}{{"subjectKind", &f.SubjectKind}, {"subject", &f.Subject}, {"subjectNamespace", &f.SubjectNamespace}, {"roleKind", &f.RoleKind},
		{"role", &f.Role}, {"namespace", &f.Namespace}, {"type", &f.Type}, {"start", &f.Start}, {"end", &f.End}, {"justification", &f.Justification}} {
		*fld.into = strings.TrimSpace(p.Get(fld.key))
	}
	if f.Subject == "" || f.Role == "" {
		s.showAssignments(q, http.StatusBadRequest, f, "Give the subject and the role.")
		return
	}
	ra := &pimv1.RoleAssignment{
		ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName(f.Subject, f.Role)},
		Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: f.SubjectKind, Name: f.Subject, Namespace: f.SubjectNamespace},
			RoleRef: pimv1.RoleRef{Kind: f.RoleKind, Name: f.Role}, Namespace: f.Namespace, Type: f.Type, Justification: f.Justification,
		},
	}
	for _, t := range []struct {
		name, value string
		into        **metav1.Time
	}{{"Start", f.Start, &ra.Spec.StartTime}, {"End", f.End, &ra.Spec.EndTime}} {
		if t.value == "" {
			continue
		}
		at, err := parseStart(t.value)
		if err != nil {
			s.showAssignments(q, http.StatusBadRequest, f, t.name+": give a date and time (UTC), for example 2026-12-01T09:00, or leave it empty.")
			return
		}
		*t.into = &metav1.Time{Time: at}
	}
	if err := q.c.Create(q.r.Context(), ra); err != nil {
		status := http.StatusUnprocessableEntity
		if apierrors.IsForbidden(err) {
			status = http.StatusForbidden
		}
		s.showAssignments(q, status, f, "The assignment was refused: "+refusal(err))
		return
	}
	q.flashAndGo(s, "/assignments?role="+url.QueryEscape(f.Role), "Assignment "+ra.Name+" created: "+f.SubjectKind+" "+f.Subject+" is "+
		strings.ToLower(f.Type)+" for "+policy.RoleDescription(ra.Spec.RoleRef, f.Namespace)+".", false)
}

// removeAssignment deletes a RoleAssignment as the user; kubepim revokes
// what it granted and records the removal.
func (s *Server) removeAssignment(q *request) {
	name := q.r.PathValue("name")
	back := localPath(q.r.PostForm.Get("back"))
	if q.r.PostForm.Get("back") == "" {
		back = "/assignments"
	}
	ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := q.c.Delete(q.r.Context(), ra); err != nil {
		q.flashAndGo(s, back, "Could not remove "+name+": "+refusal(err), true)
		return
	}
	q.flashAndGo(s, back, "Assignment "+name+" removed: kubepim revokes what it granted.", false)
}
