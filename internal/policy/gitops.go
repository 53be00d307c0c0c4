package policy

import "strings"

// ManagedInGit says which GitOps tool applies an object, from the tracking
// labels and annotations Argo CD and Flux put on what they apply, in words
// ("Argo CD application platform-pim", "Flux Kustomization
// flux-system/pim"); "" when there is no such mark. An object applied from
// Git is changed in Git: an edit in the cluster is reverted at the next
// sync.
//
//   - Argo CD's annotation tracking: argocd.argoproj.io/tracking-id
//     ("<app>:<group>/<kind>:<namespace>/<name>").
//   - Argo CD's label tracking: app.kubernetes.io/instance (its default
//     label) together with an argocd.argoproj.io/ annotation, or a custom
//     argocd.argoproj.io/instance label. The instance label alone is
//     Helm's too, and says nothing about Git.
//   - Flux: kustomize.toolkit.fluxcd.io/name and /namespace (a
//     Kustomization), helm.toolkit.fluxcd.io/name and /namespace (a
//     HelmRelease).
func ManagedInGit(labels, annotations map[string]string) string {
	if id := annotations["argocd.argoproj.io/tracking-id"]; id != "" {
		app, _, _ := strings.Cut(id, ":")
		return "Argo CD application " + app
	}
	if app := labels["argocd.argoproj.io/instance"]; app != "" {
		return "Argo CD application " + app
	}
	if app := labels["app.kubernetes.io/instance"]; app != "" {
		for k := range annotations {
			if strings.HasPrefix(k, "argocd.argoproj.io/") {
				return "Argo CD application " + app
			}
		}
	}
	for _, f := range []struct{ prefix, kind string }{
		{"kustomize.toolkit.fluxcd.io/", "Kustomization"},
		{"helm.toolkit.fluxcd.io/", "HelmRelease"},
	} {
		if name := labels[f.prefix+"name"]; name != "" {
			if ns := labels[f.prefix+"namespace"]; ns != "" {
				name = ns + "/" + name
			}
			return "Flux " + f.kind + " " + name
		}
	}
	return ""
}
