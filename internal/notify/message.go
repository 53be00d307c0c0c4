package notify

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// Content is what a notification says, whatever carries it.
type Content struct {
	Title   string
	Facts   []pimv1.NotificationFact
	Actions []pimv1.NotificationAction
}

// Bounds of what one message says. A fact quotes people (a justification
// of up to 4 KiB, the approvers' decisions with their reasons) and a title
// names a user (up to 1 KiB) and a role: a Notification the API server
// refuses is a message never sent, and chat channels cut long messages
// anyway. Longer text is cut, saying "… (N bytes cut)"; the request or
// assignment named in the message has it all.
const (
	// MaxFactLength is the longest fact value kept: a whole
	// justification (≤4096) fits.
	MaxFactLength = 4096
	// MaxTitleLength is the API's limit on spec.title.
	MaxTitleLength = 1024
)

func (c *Content) fact(name, value string) {
	if value != "" {
		c.Facts = append(c.Facts, pimv1.NotificationFact{Name: name, Value: policy.Truncate(value, MaxFactLength)})
	}
}

func (c *Content) action(label, command string) {
	c.Actions = append(c.Actions, pimv1.NotificationAction{Label: label, Command: command})
}

// ConsoleLink adds the link to the page of the console (at base, the
// manager's --console-url) where the reader sees the object and acts on
// it, as the user they sign in as: the link carries no credential, and
// opening it asks them to sign in. Nothing when base is empty.
func (c *Content) ConsoleLink(base, path string) {
	if base != "" {
		c.fact("Console", strings.TrimSuffix(base, "/")+path)
	}
}

// RequestPath is an activation request's page in the console.
func RequestPath(name string) string { return "/requests/" + url.PathEscape(name) }

// ActivationContent says what happened to an activation: who, which role,
// where, for how long, why, under which ticket, and what the reader (of
// audience) can do: approvers and admins get the commands to decide, the
// requester the one to cancel.
func ActivationContent(ar *pimv1.ActivationRequest, occ policy.Occurrence, audience string) Content {
	who := ar.RequesterName()
	grant := policy.RoleDescription(ar.Spec.RoleRef, ar.Spec.Namespace)
	if policy.IsReduced(ar) {
		grant += " (reduced scope)"
	}
	var c Content
	switch occ.Event {
	case pimv1.EventApprovalNeeded:
		c.Title = fmt.Sprintf("Approval needed: %s requests %s for %s", who, grant, ShortDuration(ar.Spec.Duration.Duration))
	case pimv1.EventApproved:
		c.Title = fmt.Sprintf("Approved: %s's activation of %s", who, grant)
	case pimv1.EventDenied:
		c.Title = fmt.Sprintf("Denied: %s's activation of %s", who, grant)
	case pimv1.EventActivated:
		c.Title = fmt.Sprintf("Activated: %s holds %s until %s", who, grant, stamp(ar.Status.ExpiresAt.Time))
	case pimv1.EventExpiringSoon:
		c.Title = fmt.Sprintf("Expiring in %s: %s's activation of %s ends at %s", ShortDuration(ar.Status.ExpiresAt.Sub(occ.At)), who, grant, stamp(ar.Status.ExpiresAt.Time))
	case pimv1.EventExpired:
		c.Title = fmt.Sprintf("Expired: %s's activation of %s ended at %s", who, grant, stamp(ar.Status.EndedAtOr(occ.At)))
	}
	c.fact("Requester", who)
	c.fact("Role", ar.Spec.RoleRef.Kind+"/"+ar.Spec.RoleRef.Name)
	c.fact("Scope", scope(ar.Spec.Namespace))
	// A reduced scope: what approvers are asked to grant of the role.
	c.fact("Permissions", policy.ScopeSummary(ar.Spec.Permissions))
	c.fact("Duration", ShortDuration(ar.Spec.Duration.Duration))
	if ar.Status.ActivatedAt != nil {
		c.fact("Starts", stamp(ar.Status.ActivatedAt.Time))
	} else if ar.Spec.StartTime != nil {
		c.fact("Starts", stamp(ar.Spec.StartTime.Time))
	}
	if ar.Status.ExpiresAt != nil {
		c.fact("Ends", stamp(ar.Status.ExpiresAt.Time))
	}
	c.fact("Justification", ar.Spec.Justification)
	if t := ar.Spec.Ticket; t != nil {
		c.fact("Ticket", t.System+":"+t.Number)
	}
	if ar.Spec.MFA != nil {
		c.fact("MFA", ar.Spec.MFA.Method)
	}
	var decisions []string
	for _, a := range ar.Status.Approvals {
		decisions = append(decisions, fmt.Sprintf("%s %s: %s", a.Approver.Username, strings.ToLower(string(a.Decision))+"d", a.Reason))
	}
	c.fact("Decisions", strings.Join(decisions, "; "))
	if occ.Event == pimv1.EventApprovalNeeded && ar.Status.ApprovalDeadline != nil {
		c.fact("Decide by", stamp(ar.Status.ApprovalDeadline.Time))
	}
	c.fact("Request", ar.Name)
	c.Title = policy.Truncate(c.Title, MaxTitleLength)

	requester := audience == pimv1.AudienceRequester
	switch {
	case occ.Event == pimv1.EventApprovalNeeded && requester:
		c.action("Cancel", "kubectl pim cancel "+ar.Name)
	case occ.Event == pimv1.EventApprovalNeeded:
		c.action("Approve", fmt.Sprintf("kubectl pim approve %s --reason %q", ar.Name, "REASON"))
		c.action("Deny", fmt.Sprintf("kubectl pim deny %s --reason %q", ar.Name, "REASON"))
		c.action("Approve with kubectl", fmt.Sprintf("kubectl annotate activationrequest %s %s=%q", ar.Name, pimv1.AnnotationApprove, "REASON"))
	case occ.Event == pimv1.EventActivated && requester:
		c.action("Deactivate when done", fmt.Sprintf("kubectl pim deactivate %s --reason %q", ar.Name, "done"))
	case occ.Event == pimv1.EventExpiringSoon && requester:
		c.action("Extend", fmt.Sprintf("kubectl pim extend %s --for 1h --reason %q", ar.Name, "REASON"))
	}
	return c
}

// AssignmentContent says what happened to an assignment; the assignee (of
// audience Requester) is told how to activate.
func AssignmentContent(ra *pimv1.RoleAssignment, occ policy.Occurrence, audience string) Content {
	who := ra.Spec.Subject.Kind + " " + subjectName(ra.Spec.Subject)
	grant := policy.RoleDescription(ra.Spec.RoleRef, ra.Spec.Namespace)
	kind := strings.ToLower(ra.Spec.Type)
	until := "permanently"
	if ra.Spec.EndTime != nil {
		until = "until " + stamp(ra.Spec.EndTime.Time)
	}
	var c Content
	switch occ.Event {
	case pimv1.EventEligibleAssigned:
		c.Title = fmt.Sprintf("Eligible: %s may activate %s %s", who, grant, until)
	case pimv1.EventActiveAssigned:
		c.Title = fmt.Sprintf("Assigned: %s holds %s %s", who, grant, until)
	case pimv1.EventExpiringSoon:
		c.Title = fmt.Sprintf("Expiring in %s: %s's %s assignment of %s ends at %s", ShortDuration(ra.Spec.EndTime.Sub(occ.At)), who, kind, grant, stamp(ra.Spec.EndTime.Time))
	case pimv1.EventExpired:
		c.Title = fmt.Sprintf("Expired: %s's %s assignment of %s ended at %s", who, kind, grant, stamp(occ.At))
	}
	c.fact("Subject", who)
	c.fact("Role", ra.Spec.RoleRef.Kind+"/"+ra.Spec.RoleRef.Name)
	c.fact("Scope", scope(ra.Spec.Namespace))
	c.fact("Assignment", ra.Spec.Type)
	if ra.Status.StartTime != nil {
		c.fact("Starts", stamp(ra.Status.StartTime.Time))
	}
	c.fact("Ends", strings.TrimPrefix(until, "until "))
	c.fact("Justification", ra.Spec.Justification)
	if ra.Spec.AssignedBy != nil {
		c.fact("Assigned by", ra.Spec.AssignedBy.Username)
	}
	c.fact("Name", ra.Name)
	c.Title = policy.Truncate(c.Title, MaxTitleLength)
	if occ.Event == pimv1.EventEligibleAssigned && audience == pimv1.AudienceRequester && ra.Spec.Subject.Kind != pimv1.SubjectKindServiceAccount {
		activate := "kubectl pim activate " + ra.Spec.RoleRef.Name
		if ra.Spec.RoleRef.Kind == pimv1.RoleKindRole {
			activate += " --kind Role"
		}
		if ra.Spec.Namespace != "" {
			activate += " -n " + ra.Spec.Namespace
		}
		c.action("Activate", activate+fmt.Sprintf(" --for 1h --reason %q", "REASON"))
	}
	return c
}

func subjectName(s pimv1.Subject) string {
	if s.Kind == pimv1.SubjectKindServiceAccount {
		return s.Namespace + "/" + s.Name
	}
	return s.Name
}

func scope(namespace string) string {
	if namespace == "" {
		return "cluster-wide"
	}
	return "namespace " + namespace
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

// ShortDuration spells a duration without zero units: 1h, 1h30m, 14d.
func ShortDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
