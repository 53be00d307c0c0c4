package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

type activateOptions struct {
	kind, reason, ticket, at, mfaCode string
	duration, timeout                 time.Duration
	wait                              bool
	scope                             scopeFlags
	// permissions, when set, are used as they are (extend).
	permissions []pimv1.PermissionRule
}

// scopeFlags narrow an activation to a subset of the role (a reduced
// scope, spec.permissions): one resource rule (--verbs with --resources,
// --api-groups, --resource-names) and/or one non-resource rule (--verbs
// with --non-resource-urls).
type scopeFlags struct {
	verbs, apiGroups, resources, resourceNames, nonResourceURLs []string
}

func (f *scopeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.verbs, "verbs", nil, "Reduced scope: only these verbs of the role (with --resources or --non-resource-urls), for example get,list.")
	cmd.Flags().StringSliceVar(&f.resources, "resources", nil, "Reduced scope: only these resources, for example pods,pods/log.")
	cmd.Flags().StringSliceVar(&f.apiGroups, "api-groups", nil, `Reduced scope: the API groups of --resources (default "", the core group).`)
	cmd.Flags().StringSliceVar(&f.resourceNames, "resource-names", nil, "Reduced scope: only the objects of --resources with these names.")
	cmd.Flags().StringSliceVar(&f.nonResourceURLs, "non-resource-urls", nil, "Reduced scope: only these non-resource URLs, for example /healthz (cluster-wide only).")
}

// permissions builds spec.permissions from the flags (nil: the whole role).
func (f *scopeFlags) permissions() ([]pimv1.PermissionRule, error) {
	if len(f.verbs) == 0 && len(f.resources) == 0 && len(f.apiGroups) == 0 && len(f.resourceNames) == 0 && len(f.nonResourceURLs) == 0 {
		return nil, nil
	}
	if len(f.verbs) == 0 {
		return nil, usage("a reduced scope needs --verbs")
	}
	if len(f.resources) == 0 && len(f.nonResourceURLs) == 0 {
		return nil, usage("a reduced scope needs --resources or --non-resource-urls with --verbs")
	}
	if len(f.resources) == 0 && (len(f.apiGroups) > 0 || len(f.resourceNames) > 0) {
		return nil, usage("--api-groups and --resource-names go with --resources")
	}
	var out []pimv1.PermissionRule
	if len(f.resources) > 0 {
		groups := f.apiGroups
		if len(groups) == 0 {
			groups = []string{""}
		}
		out = append(out, pimv1.PermissionRule{Verbs: f.verbs, APIGroups: groups, Resources: f.resources, ResourceNames: f.resourceNames})
	}
	if len(f.nonResourceURLs) > 0 {
		out = append(out, pimv1.PermissionRule{Verbs: f.verbs, NonResourceURLs: f.nonResourceURLs})
	}
	return out, nil
}

func (p *pim) activateCommand() *cobra.Command {
	o := &activateOptions{}
	cmd := &cobra.Command{
		Use:   "activate ROLE [-n NAMESPACE] --for 1h --reason TEXT",
		Short: "Activate a role you are eligible for",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.activate(cmd.Context(), args[0], o, "")
		},
	}
	cmd.Flags().StringVar(&o.kind, "kind", pimv1.RoleKindClusterRole, "Kind of the role: ClusterRole or Role (a Role needs -n).")
	cmd.Flags().DurationVar(&o.duration, "for", time.Hour, "How long to hold the role.")
	cmd.Flags().StringVar(&o.reason, "reason", "", "Justification.")
	cmd.Flags().StringVar(&o.ticket, "ticket", "", "Ticket as SYSTEM:NUMBER, for example jira:OPS-42.")
	cmd.Flags().StringVar(&o.at, "at", "", "Start at this RFC 3339 time instead of now.")
	cmd.Flags().StringVar(&o.mfaCode, "mfa-code", "", "A one-time code from your kubepim TOTP enrollment.")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "Wait until the role is active, or the request refused.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Minute, "How long --wait waits.")
	o.scope.register(cmd)
	return cmd
}

func (p *pim) extendCommand() *cobra.Command {
	o := &activateOptions{}
	cmd := &cobra.Command{
		Use:   "extend REQUEST --for 1h --reason TEXT",
		Short: "Extend an active request without a gap",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			old := &pimv1.ActivationRequest{}
			if err := p.c.Get(cmd.Context(), client.ObjectKey{Name: args[0]}, old); err != nil {
				return notFound(err, "ActivationRequest", args[0])
			}
			o.kind = old.Spec.RoleRef.Kind
			p.namespace = old.Spec.Namespace
			// An extension keeps the reduced scope of what it extends.
			o.permissions = old.Spec.Permissions
			if o.ticket == "" && old.Spec.Ticket != nil {
				o.ticket = old.Spec.Ticket.System + ":" + old.Spec.Ticket.Number
			}
			return p.activate(cmd.Context(), old.Spec.RoleRef.Name, o, old.Name)
		},
	}
	cmd.Flags().DurationVar(&o.duration, "for", time.Hour, "How long the extension lasts, from now.")
	cmd.Flags().StringVar(&o.reason, "reason", "", "Justification.")
	cmd.Flags().StringVar(&o.ticket, "ticket", "", "Ticket as SYSTEM:NUMBER (default: the extended request's).")
	cmd.Flags().StringVar(&o.mfaCode, "mfa-code", "", "A one-time code from your kubepim TOTP enrollment.")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "Wait until the extension is active.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Minute, "How long --wait waits.")
	return cmd
}

func (p *pim) activate(ctx context.Context, role string, o *activateOptions, extends string) error {
	if o.kind != pimv1.RoleKindClusterRole && o.kind != pimv1.RoleKindRole {
		return usage("--kind must be ClusterRole or Role")
	}
	if o.kind == pimv1.RoleKindRole && p.namespace == "" {
		return usage("a Role is activated in a namespace: add -n NAMESPACE")
	}
	me, err := p.whoami(ctx)
	if err != nil {
		return err
	}
	permissions := o.permissions
	if permissions == nil {
		if permissions, err = o.scope.permissions(); err != nil {
			return err
		}
	}
	roleRef := pimv1.RoleRef{Kind: o.kind, Name: role}
	var settings pimv1.RoleSettingList
	if err := p.c.List(ctx, &settings); err != nil {
		return err
	}
	spec, err := policy.SettingFor(settings.Items, roleRef, p.namespace)
	if err != nil {
		return refused("%v", err)
	}
	p.say("%s %s for %s; the policy requires: %s", verbFor(extends), policy.RoleDescription(roleRef, p.namespace), o.duration, requirements(spec, nil))
	if len(permissions) > 0 {
		p.say("reduced scope: only %s", policy.ScopeSummary(permissions))
	}

	ar := &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName(me.Username, role)},
		Spec: pimv1.ActivationRequestSpec{
			RoleRef: roleRef, Namespace: p.namespace, Duration: metav1.Duration{Duration: o.duration},
			Justification: o.reason, Extends: extends, Permissions: permissions,
		},
	}
	if o.ticket != "" {
		system, number, ok := strings.Cut(o.ticket, ":")
		if !ok || system == "" || number == "" {
			return usage("--ticket must be SYSTEM:NUMBER, for example jira:OPS-42")
		}
		ar.Spec.Ticket = &pimv1.Ticket{System: system, Number: number}
	}
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return usage("--at must be an RFC 3339 time, for example 2026-11-24T14:00:00Z")
		}
		ar.Spec.StartTime = &metav1.Time{Time: t}
	}
	if o.mfaCode != "" {
		ar.Annotations = map[string]string{pimv1.AnnotationTOTP: o.mfaCode}
	}
	if err := p.c.Create(ctx, ar); err != nil {
		return admissionRefusal(err)
	}
	p.say("created ActivationRequest %s", ar.Name)
	if !o.wait {
		return nil
	}
	return p.waitActive(ctx, ar.Name, o.timeout)
}

func verbFor(extends string) string {
	if extends != "" {
		return "extending " + extends + ":"
	}
	return "activating"
}

// waitActive follows a request, by watching it, until it is Active or
// ends, printing each state it passes through.
func (p *pim) waitActive(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := p.c.Watch(ctx, &pimv1.ActivationRequestList{}, client.MatchingFields{"metadata.name": name})
	if err != nil {
		return err
	}
	defer w.Stop()
	var last pimv1.ActivationState
	for {
		select {
		case <-ctx.Done():
			return refused("request %s is still %s after %s", name, dash(string(last)), timeout)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return refused("lost track of request %s; see kubectl pim requests", name)
			}
			ar, isRequest := ev.Object.(*pimv1.ActivationRequest)
			if !isRequest || ar.Status.State == last || ar.Status.State == "" {
				continue
			}
			last = ar.Status.State
			p.say("%s: %s", last, ar.Status.Message)
			switch {
			case last == pimv1.ActivationStateActive:
				return nil
			case policy.IsFinal(last):
				return refused("request %s is %s: %s", name, last, ar.Status.Message)
			}
		}
	}
}

// admissionRefusal turns a webhook's refusal into a plain message.
func admissionRefusal(err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, "denied the request: "); ok {
			msg = after
		}
		return refused("%s", msg)
	}
	return err
}

func notFound(err error, kind, name string) error {
	if apierrors.IsNotFound(err) {
		return refused("%s %q not found", kind, name)
	}
	return err
}

// annotate sets an annotation with a merge patch, as kubectl annotate does.
func (p *pim) annotate(ctx context.Context, name, key, value string) error {
	ar := &pimv1.ActivationRequest{}
	if err := p.c.Get(ctx, client.ObjectKey{Name: name}, ar); err != nil {
		return notFound(err, "ActivationRequest", name)
	}
	patch := client.MergeFrom(ar.DeepCopy())
	if ar.Annotations == nil {
		ar.Annotations = map[string]string{}
	}
	ar.Annotations[key] = value
	if err := p.c.Patch(ctx, ar, patch); err != nil {
		return admissionRefusal(err)
	}
	return nil
}

func (p *pim) deactivateCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "deactivate REQUEST --reason TEXT",
		Short: "End an active request now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := p.annotate(cmd.Context(), args[0], pimv1.AnnotationDeactivate, reason); err != nil {
				return err
			}
			p.say("deactivating %s", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "done", "Why.")
	return cmd
}

func (p *pim) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel REQUEST",
		Short: "Withdraw a request that is not active yet",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := p.annotate(cmd.Context(), args[0], pimv1.AnnotationCancel, ""); err != nil {
				return err
			}
			p.say("cancelling %s", args[0])
			return nil
		},
	}
}

func (p *pim) decideCommand(decision pimv1.ApprovalDecision) *cobra.Command {
	var reason string
	verb, key := "approve", pimv1.AnnotationApprove
	if decision == pimv1.DecisionDeny {
		verb, key = "deny", pimv1.AnnotationDeny
	}
	cmd := &cobra.Command{
		Use:   verb + " REQUEST --reason TEXT",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a request that waits for you",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usage("give a reason with --reason")
			}
			if err := p.annotate(cmd.Context(), args[0], key, reason); err != nil {
				return err
			}
			p.say("%s %s", map[string]string{"approve": "approved", "deny": "denied"}[verb], args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "Why (required).")
	return cmd
}
