package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// policyView is a RoleSetting's activation policy as a page shows it.
type policyView struct {
	Max, Default          time.Duration
	Justification, Ticket bool
	MFA, Approval         bool
	Approvals             int32
	Approvers             []string
	Conflict              string
}

func viewPolicy(spec pimv1.RoleSettingSpec, err error) policyView {
	if err != nil {
		return policyView{Conflict: err.Error()}
	}
	a := spec.Activation
	v := policyView{Max: a.MaxDuration.Duration, Default: policy.DefaultActivationDuration(a),
		Justification: a.JustificationRequired(), Ticket: a.RequireTicket, MFA: a.RequireMFA, Approval: a.Approval.Required}
	if v.Approval {
		v.Approvals = max(a.Approval.RequiredApprovals, 1)
		for _, p := range a.Approval.Approvers {
			v.Approvers = append(v.Approvers, strings.ToLower(p.Kind)+" "+p.Name)
		}
	}
	return v
}

func (s *Server) mfaClaimed(me pimv1.UserInfo) bool {
	return policy.MFAClaimed(me.Extra, s.opts.MFAClaim, s.opts.MFAClaimValues)
}

// assignmentRow is one eligible or active assignment of the user.
type assignmentRow struct {
	RA          *pimv1.RoleAssignment
	Via         string
	Policy      policyView
	ActivateURL string
}

// myRoles: the user's eligible and active assignments (direct and through
// groups), what activating each requires, and the user's open requests.
func (s *Server) myRoles(q *request) {
	ctx := q.r.Context()
	// The user's own assignments and requests only (field selectors),
	// and the RoleSettings (one per governed role), read at once.
	var assignments []pimv1.RoleAssignment
	var requests []pimv1.ActivationRequest
	var settings pimv1.RoleSettingList
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { assignments, errs[0] = myAssignments(ctx, q.c, q.me) })
	wg.Go(func() { requests, errs[1] = myRequestList(ctx, q.c, q.me) })
	wg.Go(func() { errs[2] = q.c.List(ctx, &settings) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.apiError(q, err)
			return
		}
	}
	var eligible, active []assignmentRow
	for i := range assignments {
		ra := &assignments[i]
		if !policy.SubjectMatches(ra.Spec.Subject, q.me) || ra.Status.State == pimv1.AssignmentStateExpired || !ra.DeletionTimestamp.IsZero() {
			continue
		}
		row := assignmentRow{RA: ra, Via: ra.Spec.Subject.Kind + " " + ra.Spec.Subject.Name}
		if ra.Spec.Subject.Kind == pimv1.SubjectKindUser {
			row.Via = "you"
		}
		if ra.Spec.Type == pimv1.AssignmentEligible {
			row.Policy = viewPolicy(policy.SettingFor(settings.Items, ra.Spec.RoleRef, ra.Spec.Namespace))
			row.ActivateURL = "/activate?" + activateQuery(ra.Spec.RoleRef, ra.Spec.Namespace)
			eligible = append(eligible, row)
		} else {
			active = append(active, row)
		}
	}
	sortRows := func(rows []assignmentRow) {
		slices.SortStableFunc(rows, func(a, b assignmentRow) int {
			return strings.Compare(a.RA.Spec.RoleRef.Name+"/"+a.RA.Spec.Namespace, b.RA.Spec.RoleRef.Name+"/"+b.RA.Spec.Namespace)
		})
	}
	sortRows(eligible)
	sortRows(active)
	open := mine(requests, q.me, func(ar *pimv1.ActivationRequest) bool { return !policy.IsFinal(ar.Status.State) })
	q.page(s, http.StatusOK, "roles", page{Title: "My roles", Nav: "roles", Data: struct {
		Eligible, Active []assignmentRow
		Requests         []*pimv1.ActivationRequest
	}{eligible, active, open}})
}

func activateQuery(ref pimv1.RoleRef, namespace string) string {
	v := map[string]string{"kind": ref.Kind, "role": ref.Name, "namespace": namespace}
	var b strings.Builder
	for _, k := range []string{"kind", "role", "namespace"} {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + url.QueryEscape(v[k]))
	}
	return b.String()
}

// mine returns the user's own requests that keep, newest first.
func mine(items []pimv1.ActivationRequest, me pimv1.UserInfo, keep func(*pimv1.ActivationRequest) bool) []*pimv1.ActivationRequest {
	var out []*pimv1.ActivationRequest
	for i := range items {
		ar := &items[i]
		if ar.Spec.Requester != nil && ar.Spec.Requester.Username == me.Username && keep(ar) {
			out = append(out, ar)
		}
	}
	slices.SortStableFunc(out, func(a, b *pimv1.ActivationRequest) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	return out
}

// activateView is the Activate form.
type activateView struct {
	Kind, Role, Namespace string
	// Namespaces the user's eligibility covers when it is namespaced;
	// ClusterWide when an eligibility covers every namespace.
	Namespaces  []string
	ClusterWide bool
	Eligible    bool
	Policy      policyView
	// The values typed so far.
	Duration, Start, Justification, TicketSystem, TicketNumber string
	// A reduced scope, comma-separated (optional): one rule of the role.
	Verbs, APIGroups, Resources, ResourceNames string
}

func (s *Server) activateForm(q *request) {
	v := activateView{Kind: q.r.URL.Query().Get("kind"), Role: q.r.URL.Query().Get("role"), Namespace: q.r.URL.Query().Get("namespace")}
	s.showActivate(q, http.StatusOK, v, "")
}

// showActivate renders the Activate form with what the user may choose
// and what the policy requires.
func (s *Server) showActivate(q *request, status int, v activateView, errMsg string) {
	ctx := q.r.Context()
	if v.Kind == "" {
		v.Kind = pimv1.RoleKindClusterRole
	}
	var assignments []pimv1.RoleAssignment
	var settings pimv1.RoleSettingList
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { assignments, errs[0] = myAssignments(ctx, q.c, q.me) })
	wg.Go(func() { errs[1] = q.c.List(ctx, &settings) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			s.apiError(q, err)
			return
		}
	}
	ref := pimv1.RoleRef{Kind: v.Kind, Name: v.Role}
	for i := range assignments {
		ra := &assignments[i]
		if ra.Spec.Type != pimv1.AssignmentEligible || ra.Spec.RoleRef != ref || !policy.SubjectMatches(ra.Spec.Subject, q.me) ||
			ra.Status.State == pimv1.AssignmentStateExpired {
			continue
		}
		v.Eligible = true
		if ra.Spec.Namespace == "" {
			v.ClusterWide = true
		} else if !slices.Contains(v.Namespaces, ra.Spec.Namespace) {
			v.Namespaces = append(v.Namespaces, ra.Spec.Namespace)
		}
	}
	slices.Sort(v.Namespaces)
	if v.Namespace == "" && !v.ClusterWide && len(v.Namespaces) > 0 {
		v.Namespace = v.Namespaces[0]
	}
	v.Policy = viewPolicy(policy.SettingFor(settings.Items, ref, v.Namespace))
	if v.Duration == "" {
		v.Duration = shortDuration(v.Policy.Default)
	}
	q.page(s, status, "activate", page{Title: "Activate " + v.Role, Nav: "roles", Error: errMsg, Data: v})
}

// startLayouts are the form's start time: the browser's datetime-local
// value, with or without seconds, read as UTC (the page says so).
var startLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04"}

func parseStart(v string) (time.Time, error) {
	var err error
	for _, layout := range startLayouts {
		var t time.Time
		if t, err = time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// activate creates an ActivationRequest as the user: kubepim's webhooks
// stamp who asked and check the policy; their refusal is shown as given.
func (s *Server) activate(q *request) {
	f := q.r.PostForm
	v := activateView{Kind: f.Get("kind"), Role: f.Get("role"), Namespace: strings.TrimSpace(f.Get("namespace")),
		Duration: strings.TrimSpace(f.Get("duration")), Start: strings.TrimSpace(f.Get("start")),
		Justification: f.Get("justification"), TicketSystem: strings.TrimSpace(f.Get("ticketSystem")), TicketNumber: strings.TrimSpace(f.Get("ticketNumber")),
		Verbs: f.Get("verbs"), APIGroups: f.Get("apiGroups"), Resources: f.Get("resources"), ResourceNames: f.Get("resourceNames")}
	if v.Kind != pimv1.RoleKindClusterRole && v.Kind != pimv1.RoleKindRole || v.Role == "" {
		s.showActivate(q, http.StatusBadRequest, v, "Choose a role from My roles.")
		return
	}
	d, err := time.ParseDuration(v.Duration)
	if err != nil || d <= 0 {
		s.showActivate(q, http.StatusBadRequest, v, "Duration: write it as 30m, 1h or 1h30m.")
		return
	}
	ar := &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName(q.me.Username, v.Role)},
		Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: v.Kind, Name: v.Role}, Namespace: v.Namespace,
			Duration: metav1.Duration{Duration: d}, Justification: strings.TrimSpace(v.Justification)},
	}
	if v.Start != "" {
		t, err := parseStart(v.Start)
		if err != nil {
			s.showActivate(q, http.StatusBadRequest, v, "Start: give a date and time (UTC), or leave it empty for now.")
			return
		}
		ar.Spec.StartTime = &metav1.Time{Time: t}
	}
	if v.TicketSystem != "" || v.TicketNumber != "" {
		ar.Spec.Ticket = &pimv1.Ticket{System: v.TicketSystem, Number: v.TicketNumber}
	}
	permissions, msg := reducedScope(v)
	if msg != "" {
		s.showActivate(q, http.StatusBadRequest, v, msg)
		return
	}
	ar.Spec.Permissions = permissions
	if code := strings.TrimSpace(f.Get("totp")); code != "" {
		ar.Annotations = map[string]string{pimv1.AnnotationTOTP: code}
	}
	if err := q.c.Create(q.r.Context(), ar); err != nil {
		status := http.StatusUnprocessableEntity
		if apierrors.IsForbidden(err) {
			status = http.StatusForbidden
		}
		s.showActivate(q, status, v, refusal(err))
		return
	}
	q.flashAndGo(s, "/requests/"+ar.Name, "Request "+ar.Name+" created.", false)
}

// reducedScope reads the form's optional narrowing into one rule of
// spec.permissions (nil when the whole role is asked for). Whether the role
// allows it is kubepim's admission webhook's to say; the page shows its
// refusal as given.
func reducedScope(v activateView) ([]pimv1.PermissionRule, string) {
	verbs, resources, names := commaList(v.Verbs), commaList(v.Resources), commaList(v.ResourceNames)
	if len(verbs) == 0 && len(resources) == 0 && len(names) == 0 && strings.TrimSpace(v.APIGroups) == "" {
		return nil, ""
	}
	if len(verbs) == 0 || len(resources) == 0 {
		return nil, "Reduced scope: give the verbs and the resources (for example get,list and pods,pods/log), or leave all four fields empty for the whole role."
	}
	groups := commaList(v.APIGroups)
	if len(groups) == 0 {
		groups = []string{""} // the core group, as kubectl pim activate
	}
	return []pimv1.PermissionRule{{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}}, ""
}

// commaList splits "a, b,,c" into [a b c]; "core" names the core API
// group, which is otherwise the empty string and cannot be typed.
func commaList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "core" {
			out = append(out, "")
		} else if part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (s *Server) myRequests(q *request) {
	requests, err := myRequestList(q.r.Context(), q.c, q.me)
	if err != nil {
		s.apiError(q, err)
		return
	}
	rows := mine(requests, q.me, func(*pimv1.ActivationRequest) bool { return true })
	q.page(s, http.StatusOK, "requests", page{Title: "My requests", Nav: "requests", Data: rows})
}

// requestView is one request with what the user may do with it.
type requestView struct {
	AR                       *pimv1.ActivationRequest
	Mine                     bool
	CanCancel, CanDeactivate bool
	// CanExtend: an active request of the user's; AskTOTP: its policy
	// requires MFA and the sign-in did not prove a second factor.
	CanExtend, AskTOTP bool
	// CanDecide: it waits for approval and the user is not the requester;
	// Approver: the policy names the user (kubepim decides for real).
	CanDecide, Approver bool
	Policy              policyView
}

func (s *Server) viewRequest(q *request, ar *pimv1.ActivationRequest, settings []pimv1.RoleSetting) requestView {
	spec, err := policy.SettingFor(settings, ar.Spec.RoleRef, ar.Spec.Namespace)
	v := requestView{AR: ar, Policy: viewPolicy(spec, err)}
	v.Mine = ar.Spec.Requester != nil && ar.Spec.Requester.Username == q.me.Username
	switch state := ar.Status.State; {
	case v.Mine && (state == "" || state == pimv1.ActivationStatePending || state == pimv1.ActivationStatePendingApproval || state == pimv1.ActivationStateScheduled):
		v.CanCancel = ar.Annotations[pimv1.AnnotationCancel] == ""
	case v.Mine && state == pimv1.ActivationStateActive:
		v.CanDeactivate = ar.Annotations[pimv1.AnnotationDeactivate] == ""
		v.CanExtend = v.CanDeactivate && err == nil
		v.AskTOTP = v.CanExtend && v.Policy.MFA && !s.mfaClaimed(q.me)
	}
	if !v.Mine && ar.Status.State == pimv1.ActivationStatePendingApproval {
		v.CanDecide = true
		v.Approver = err == nil && policy.AwaitsDecisionBy(ar, spec.Activation.Approval, q.me)
	}
	return v
}

func (s *Server) requestPage(q *request) {
	ctx := q.r.Context()
	ar := &pimv1.ActivationRequest{}
	if err := q.c.Get(ctx, client.ObjectKey{Name: q.r.PathValue("name")}, ar); err != nil {
		s.apiError(q, err)
		return
	}
	var settings pimv1.RoleSettingList
	if err := q.c.List(ctx, &settings); err != nil {
		s.apiError(q, err)
		return
	}
	p := page{Title: "Request " + ar.Name, Nav: "requests", Data: s.viewRequest(q, ar, settings.Items)}
	if !policy.IsFinal(ar.Status.State) && ar.Status.State != pimv1.ActivationStateActive {
		p.Refresh, p.Live = 2, "/requests/"+url.PathEscape(ar.Name)+"/events"
	}
	q.page(s, http.StatusOK, "request", p)
}

// approvalsView is one page of the requests waiting for the user.
type approvalsView struct {
	Rows []requestView
	// Next links to the next page ("" on the last); First says this is
	// the first page, FirstURL links to it.
	Next, FirstURL string
	First          bool
}

// approvals: the requests waiting for the user's decision, a page at a
// time: PendingApproval requests (the status.state selectable field), in
// the API's order (by name), read with limit and continue until a page's
// worth is the user's to decide or maxReviewListCalls calls were made.
func (s *Server) approvals(q *request) {
	ctx := q.r.Context()
	var settings pimv1.RoleSettingList
	if err := q.c.List(ctx, &settings); err != nil {
		s.apiError(q, err)
		return
	}
	cont := q.r.URL.Query().Get("continue")
	v := approvalsView{First: cont == "", FirstURL: "/approvals"}
	for calls := 0; calls < maxReviewListCalls; calls++ {
		var requests pimv1.ActivationRequestList
		if err := q.c.List(ctx, &requests, client.MatchingFields{pimv1.FieldState: string(pimv1.ActivationStatePendingApproval)},
			client.Limit(int64(s.opts.ApprovalPageSize-len(v.Rows))), client.Continue(cont)); err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				q.page(s, http.StatusGone, "approvals", page{Title: "Approve requests", Nav: "approvals", Data: v,
					Error: "The list has changed too much since the previous page was read (its continue token expired). Start again from the first page."})
				return
			}
			s.apiError(q, err)
			return
		}
		for i := range requests.Items {
			if rv := s.viewRequest(q, &requests.Items[i], settings.Items); rv.Approver {
				v.Rows = append(v.Rows, rv)
			}
		}
		cont = requests.Continue
		if cont == "" || len(v.Rows) >= s.opts.ApprovalPageSize {
			break
		}
	}
	if cont != "" {
		v.Next = "/approvals?" + url.Values{"continue": {cont}}.Encode()
	}
	slices.SortStableFunc(v.Rows, func(a, b requestView) int { return a.AR.CreationTimestamp.Compare(b.AR.CreationTimestamp.Time) })
	q.page(s, http.StatusOK, "approvals", page{Title: "Approve requests", Nav: "approvals", Data: v})
}

// requestAction cancels, deactivates, approves or denies a request by
// annotating it as the user, as kubectl annotate would: kubepim's webhook
// checks who may, and its refusal is shown as given.
func (s *Server) requestAction(q *request) {
	name, action := q.r.PathValue("name"), q.r.PathValue("action")
	if action == "extend" {
		s.extend(q, name)
		return
	}
	reason := strings.TrimSpace(q.r.PostForm.Get("reason"))
	back := localPath(q.r.PostForm.Get("back"))
	if q.r.PostForm.Get("back") == "" {
		back = "/requests/" + url.PathEscape(name)
	}
	var key, done string
	switch action {
	case "cancel":
		key, done, reason = pimv1.AnnotationCancel, "Request "+name+" cancelled.", ""
	case "deactivate":
		key, done = pimv1.AnnotationDeactivate, "Request "+name+" deactivated: access ends now."
		if reason == "" {
			reason = "deactivated in the console"
		}
	case "approve", "deny":
		key, done = pimv1.AnnotationApprove, "You approved "+name+"."
		if action == "deny" {
			key, done = pimv1.AnnotationDeny, "You denied "+name+"."
		}
	default:
		s.renderError(q.w, q.r, http.StatusNotFound, "No such action.")
		return
	}
	ctx := q.r.Context()
	ar := &pimv1.ActivationRequest{}
	if err := q.c.Get(ctx, client.ObjectKey{Name: name}, ar); err != nil {
		q.flashAndGo(s, back, refusal(err), true)
		return
	}
	patch := client.MergeFrom(ar.DeepCopy())
	if ar.Annotations == nil {
		ar.Annotations = map[string]string{}
	}
	ar.Annotations[key] = reason
	if err := q.c.Patch(ctx, ar, patch); err != nil {
		q.flashAndGo(s, back, refusal(err), true)
		return
	}
	q.flashAndGo(s, back, done, false)
}

// apiError shows what the API server said: a missing object, a refusal
// of RBAC, or a failure.
func (s *Server) apiError(q *request, err error) {
	switch {
	case apierrors.IsNotFound(err):
		q.page(s, http.StatusNotFound, "error", page{Title: "Not found", Error: err.Error()})
	case apierrors.IsForbidden(err):
		q.page(s, http.StatusForbidden, "error", page{Title: "Not allowed", Error: "The Kubernetes API server refused: " + err.Error()})
	default:
		q.page(s, http.StatusBadGateway, "error", page{Title: "Kubernetes API error", Error: err.Error()})
	}
}

// extend asks, as the user, for a request that takes over from an active
// one without a gap (spec.extends), as `kubectl pim extend` does: the same
// role and scope, the ticket of the old one unless another is given.
// kubepim's webhook checks that the old request is the user's and active,
// and the policy; its refusal is shown on the old request's page.
func (s *Server) extend(q *request, name string) {
	ctx := q.r.Context()
	back := "/requests/" + url.PathEscape(name)
	f := q.r.PostForm
	old := &pimv1.ActivationRequest{}
	if err := q.c.Get(ctx, client.ObjectKey{Name: name}, old); err != nil {
		q.flashAndGo(s, back, refusal(err), true)
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(f.Get("duration")))
	if err != nil || d <= 0 {
		q.flashAndGo(s, back, "Duration: write it as 30m, 1h or 1h30m.", true)
		return
	}
	ar := &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName(q.me.Username, old.Spec.RoleRef.Name)},
		Spec: pimv1.ActivationRequestSpec{RoleRef: old.Spec.RoleRef, Namespace: old.Spec.Namespace, Extends: old.Name,
			Duration: metav1.Duration{Duration: d}, Justification: strings.TrimSpace(f.Get("justification"))},
	}
	if system, number := strings.TrimSpace(f.Get("ticketSystem")), strings.TrimSpace(f.Get("ticketNumber")); system != "" || number != "" {
		ar.Spec.Ticket = &pimv1.Ticket{System: system, Number: number}
	}
	if code := strings.TrimSpace(f.Get("totp")); code != "" {
		ar.Annotations = map[string]string{pimv1.AnnotationTOTP: code}
	}
	if err := q.c.Create(ctx, ar); err != nil {
		q.flashAndGo(s, back, refusal(err), true)
		return
	}
	q.flashAndGo(s, "/requests/"+ar.Name, "Request "+ar.Name+" created: it extends "+old.Name+" without a gap.", false)
}
