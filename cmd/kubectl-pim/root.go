package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// pim is what every command shares: the streams, the client, who the user
// is, and the clock.
type pim struct {
	genericiooptions.IOStreams
	flags     *genericclioptions.ConfigFlags
	restFn    func() (*rest.Config, error)
	clock     clock.Clock
	output    string
	c         client.WithWatch
	namespace string
}

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pimv1.AddToScheme(scheme))
}

// newRootCommand builds the plugin. restFn overrides how the REST config is
// made (tests); nil uses kubectl's flags and kubeconfig.
func newRootCommand(streams genericiooptions.IOStreams, flags *genericclioptions.ConfigFlags, restFn func() (*rest.Config, error)) *cobra.Command {
	p := &pim{IOStreams: streams, flags: flags, restFn: restFn, clock: clock.RealClock{}}
	root := &cobra.Command{
		// kubectl finds the plugin as the binary kubectl-pim and users
		// type "kubectl pim": the command is named pim (cobra takes a
		// command's name from the first word of Use, which made every
		// usage line read "kubectl [command]"), and displayed as
		// "kubectl pim", cobra's convention for plugins.
		Use:          "pim",
		Annotations:  map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl pim"},
		Short:        "Just-in-time access to Kubernetes roles with kubepim",
		SilenceUsage: true,
		// cobra's completion command writes scripts for a program named
		// "pim", which does not exist; kubectl completes plugins itself,
		// through a kubectl_complete-pim that calls "kubectl-pim
		// __complete" (README).
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return p.connect(cmd.Context())
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&p.output, "output", "o", "", "Output format: table (default), json or yaml; audit also csv.")
	root.AddCommand(p.rolesCommand(), p.activateCommand(), p.deactivateCommand(), p.cancelCommand(), p.extendCommand(),
		p.requestsCommand(), p.approvalsCommand(), p.decideCommand(pimv1.DecisionApprove), p.decideCommand(pimv1.DecisionDeny),
		p.reviewsCommand(), p.reviewCommand(), p.auditCommand(), p.mfaCommand())
	return root
}

func (p *pim) connect(ctx context.Context) error {
	var cfg *rest.Config
	var err error
	if p.restFn != nil {
		cfg, err = p.restFn()
	} else {
		cfg, err = p.flags.ToRESTConfig()
	}
	if err != nil {
		return usage("%v", err)
	}
	p.c, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if p.flags.Namespace != nil {
		p.namespace = *p.flags.Namespace
	}
	// One cheap call tells whether kubepim is installed at all.
	var list pimv1.RoleSettingList
	if err := p.c.List(ctx, &list, client.Limit(1)); err != nil && (meta.IsNoMatchError(err) || apierrors.IsNotFound(err)) {
		return &exitError{code: exitNotInstalled, err: fmt.Errorf("kubepim is not installed on this cluster (no kubepim.io API): see docs/install.md")}
	}
	return nil
}

// whoami asks the API server who the user is, groups and extra included.
func (p *pim) whoami(ctx context.Context) (pimv1.UserInfo, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := p.c.Create(ctx, review); err != nil {
		return pimv1.UserInfo{}, fmt.Errorf("asking the API server who you are: %w", err)
	}
	u := review.Status.UserInfo
	info := pimv1.UserInfo{Username: u.Username, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = map[string][]string{}
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	return info, nil
}

// left says how long until t, in words a person reads at a glance.
func left(now, t time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "ended"
	}
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}
