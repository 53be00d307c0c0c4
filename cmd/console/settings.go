package main

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// The Settings and Alerts pages show the RoleSettings as the user may read
// them (kubepim-requester and above may list them): each policy in words
// and as YAML, marked "managed in Git" when Argo CD or Flux applies it,
// and the alerts kubepim raised on them with their cause. Both pages only
// read: a RoleSetting is changed where it lives (Git, or kubectl).

// settingView is one RoleSetting in words.
type settingView struct {
	Name, Role, Scope string
	// Git names the GitOps tool that applies it ("" when none).
	Git        string
	Activation policyView
	Timeout    time.Duration
	// Eligible and Active are the assignment rules in words.
	Eligible, Active []string
	// Notify lists, per event, who hears of it.
	EmailChannel               string
	Admins, Approvers          []string
	Notify                     []notifyRow
	AssignmentReminders        []time.Duration
	ActivationReminders        []time.Duration
	Alerts                     []pimv1.Alert
	AlertSummary, YAML, Failed string
}

type notifyRow struct {
	Event, Audiences string
}

func assignmentRules(permanent bool, maxDuration *time.Duration) []string {
	var out []string
	if permanent {
		out = append(out, "may be permanent")
	} else {
		out = append(out, "must end")
	}
	if maxDuration != nil {
		out = append(out, "at most "+shortDuration(*maxDuration))
	}
	return out
}

func viewSetting(rs *pimv1.RoleSetting) settingView {
	sp := rs.Spec
	v := settingView{Name: rs.Name, Role: sp.RoleRef.Kind + " " + sp.RoleRef.Name, Scope: scope(sp.RoleRef.Namespace),
		Git: policy.ManagedInGit(rs.Labels, rs.Annotations), Activation: viewPolicy(sp, nil),
		Timeout: sp.Activation.Approval.Timeout.Duration, EmailChannel: policy.EmailChannel(sp.Notifications),
		Alerts: rs.Status.Alerts, AlertSummary: rs.Status.AlertSummary}
	var maxEligible, maxActive *time.Duration
	if d := sp.Assignment.Eligible.MaxDuration; d != nil {
		maxEligible = &d.Duration
	}
	if d := sp.Assignment.Active.MaxDuration; d != nil {
		maxActive = &d.Duration
	}
	v.Eligible = assignmentRules(sp.Assignment.Eligible.PermanentAllowed(), maxEligible)
	v.Active = assignmentRules(sp.Assignment.Active.PermanentAllowed(), maxActive)
	if sp.Assignment.Active.RequireJustification {
		v.Active = append(v.Active, "justification required")
	}
	if sp.Assignment.Active.RequireMFA {
		v.Active = append(v.Active, "MFA required")
	}
	audience := func(a pimv1.NotificationAudience) []string {
		return append(slices.Clone(a.Emails), prefixed("channel ", a.Channels)...)
	}
	v.Admins, v.Approvers = audience(sp.Notifications.Admins), audience(sp.Notifications.Approvers)
	for _, event := range policy.NotificationEvents {
		who := policy.Notified(sp.Notifications, event)
		row := notifyRow{Event: event, Audiences: strings.Join(who, ", ")}
		if row.Audiences == "" {
			row.Audiences = "no one"
		}
		v.Notify = append(v.Notify, row)
	}
	v.AssignmentReminders, v.ActivationReminders = policy.Reminders(sp.Notifications)
	// The YAML as kubectl would show it, without the server's bookkeeping.
	c := rs.DeepCopy()
	c.ManagedFields = nil
	c.APIVersion, c.Kind = pimv1.GroupVersion.String(), "RoleSetting"
	if b, err := yaml.Marshal(c); err == nil {
		v.YAML = string(b)
	} else {
		v.Failed = err.Error()
	}
	return v
}

func prefixed(p string, xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, p+x)
	}
	return out
}

func (s *Server) listSettings(q *request) ([]pimv1.RoleSetting, bool) {
	var list pimv1.RoleSettingList
	if err := q.c.List(q.r.Context(), &list); err != nil {
		s.apiError(q, err)
		return nil, false
	}
	slices.SortFunc(list.Items, func(a, b pimv1.RoleSetting) int { return cmp.Compare(a.Name, b.Name) })
	return list.Items, true
}

// settingsPage: every RoleSetting in words, with its YAML.
func (s *Server) settingsPage(q *request) {
	items, ok := s.listSettings(q)
	if !ok {
		return
	}
	views := make([]settingView, 0, len(items))
	for i := range items {
		views = append(views, viewSetting(&items[i]))
	}
	q.page(s, http.StatusOK, "settings", page{Title: "Settings", Nav: "settings", Data: views})
}

// alertRow is one raised alert.
type alertRow struct {
	Setting, Role, Scope, Git string
	pimv1.Alert
}

// alertsPage: the alerts kubepim raised on the RoleSettings, with their
// cause, oldest first.
func (s *Server) alertsPage(q *request) {
	items, ok := s.listSettings(q)
	if !ok {
		return
	}
	var rows []alertRow
	for _, rs := range items {
		for _, a := range rs.Status.Alerts {
			rows = append(rows, alertRow{Setting: rs.Name, Role: rs.Spec.RoleRef.Kind + " " + rs.Spec.RoleRef.Name,
				Scope: scope(rs.Spec.RoleRef.Namespace), Git: policy.ManagedInGit(rs.Labels, rs.Annotations), Alert: a})
		}
	}
	slices.SortStableFunc(rows, func(a, b alertRow) int { return a.Since.Compare(b.Since.Time) })
	q.page(s, http.StatusOK, "alerts", page{Title: "Alerts", Nav: "alerts", Data: rows})
}
