package policy

import "testing"

func TestManagedInGit(t *testing.T) {
	for _, tc := range []struct {
		name                string
		labels, annotations map[string]string
		want                string
	}{
		{"nothing", nil, nil, ""},
		{"Argo CD annotation tracking", nil, map[string]string{"argocd.argoproj.io/tracking-id": "platform-pim:kubepim.io/RoleSetting:/db-admin"}, "Argo CD application platform-pim"},
		{"Argo CD label tracking", map[string]string{"app.kubernetes.io/instance": "platform-pim"},
			map[string]string{"argocd.argoproj.io/sync-options": "Prune=false"}, "Argo CD application platform-pim"},
		{"Argo CD custom label", map[string]string{"argocd.argoproj.io/instance": "pim"}, nil, "Argo CD application pim"},
		{"the instance label alone is Helm's too", map[string]string{"app.kubernetes.io/instance": "kubepim", "app.kubernetes.io/managed-by": "Helm"}, nil, ""},
		{"Flux Kustomization", map[string]string{"kustomize.toolkit.fluxcd.io/name": "pim", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}, nil,
			"Flux Kustomization flux-system/pim"},
		{"Flux HelmRelease", map[string]string{"helm.toolkit.fluxcd.io/name": "kubepim", "helm.toolkit.fluxcd.io/namespace": "platform"}, nil,
			"Flux HelmRelease platform/kubepim"},
		{"an unrelated annotation", nil, map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ManagedInGit(tc.labels, tc.annotations); got != tc.want {
				t.Errorf("ManagedInGit = %q, want %q", got, tc.want)
			}
		})
	}
}
