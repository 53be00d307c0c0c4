package policy

import (
	"errors"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func settingNamed(name string, maxDuration time.Duration, deleting bool) pimv1.RoleSetting {
	rs := pimv1.RoleSetting{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pimv1.RoleSettingSpec{
			RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: maxDuration}, RequireTicket: true},
		},
	}
	if deleting {
		rs.DeletionTimestamp = actMeta(actNow)
		rs.Finalizers = []string{"kubepim.io/test"}
	}
	return rs
}

func TestDefaultRoleSettingSpec(t *testing.T) {
	d := DefaultRoleSettingSpec()
	a := d.Activation
	if a.MaxDuration.Duration != 8*time.Hour || !a.JustificationRequired() || a.RequireTicket || a.RequireMFA {
		t.Errorf("activation defaults = %+v", a)
	}
	if a.Approval.Required || a.Approval.RequiredApprovals != 1 || a.Approval.Timeout.Duration != 24*time.Hour || len(a.Approval.Approvers) != 0 {
		t.Errorf("approval defaults = %+v", a.Approval)
	}
	if !d.Assignment.Eligible.PermanentAllowed() || !d.Assignment.Active.PermanentAllowed() ||
		d.Assignment.Eligible.MaxDuration != nil || d.Assignment.Active.MaxDuration != nil ||
		d.Assignment.Active.RequireJustification || d.Assignment.Active.RequireMFA {
		t.Errorf("assignment defaults = %+v", d.Assignment)
	}
}

func TestEffectiveSetting(t *testing.T) {
	const role = "ClusterRole admin"
	cases := []struct {
		name      string
		settings  []pimv1.RoleSetting
		wantSpec  pimv1.RoleSettingSpec
		wantName  string
		wantNames []string // the conflicting settings, when an error is wanted
	}{
		{name: "none gives the defaults", wantSpec: DefaultRoleSettingSpec()},
		{name: "only a deleting one gives the defaults",
			settings: []pimv1.RoleSetting{settingNamed("going", time.Hour, true)},
			wantSpec: DefaultRoleSettingSpec()},
		{name: "one",
			settings: []pimv1.RoleSetting{settingNamed("admin-policy", 2*time.Hour, false)},
			wantSpec: settingNamed("admin-policy", 2*time.Hour, false).Spec, wantName: "admin-policy"},
		{name: "one live and one deleting",
			settings: []pimv1.RoleSetting{settingNamed("old", time.Hour, true), settingNamed("new", 3*time.Hour, false)},
			wantSpec: settingNamed("new", 3*time.Hour, false).Spec, wantName: "new"},
		{name: "several conflict, named in order",
			settings:  []pimv1.RoleSetting{settingNamed("zeta", time.Hour, false), settingNamed("beta", time.Hour, true), settingNamed("alpha", 2*time.Hour, false), settingNamed("mid", time.Hour, false)},
			wantNames: []string{"alpha", "mid", "zeta"}},
		{name: "two conflict",
			settings:  []pimv1.RoleSetting{settingNamed("b", time.Hour, false), settingNamed("a", time.Hour, false)},
			wantNames: []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := make([]string, 0, len(tc.settings))
			for _, rs := range tc.settings {
				before = append(before, rs.Name)
			}
			spec, name, err := EffectiveSetting(role, tc.settings)
			after := make([]string, 0, len(tc.settings))
			for _, rs := range tc.settings {
				after = append(after, rs.Name)
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("EffectiveSetting changed its input: %v became %v", before, after)
			}
			if tc.wantNames != nil {
				var conflict *ErrConflictingSettings
				if !errors.As(err, &conflict) {
					t.Fatalf("error = %v, want *ErrConflictingSettings", err)
				}
				if conflict.Role != role || !reflect.DeepEqual(conflict.Names, tc.wantNames) {
					t.Errorf("conflict = %+v, want role %q and names %v", conflict, role, tc.wantNames)
				}
				if name != "" || !reflect.DeepEqual(spec, pimv1.RoleSettingSpec{}) {
					t.Errorf("EffectiveSetting returned (%+v, %q) with its error", spec, name)
				}
				return
			}
			if err != nil {
				t.Fatalf("EffectiveSetting: %v", err)
			}
			if name != tc.wantName || !reflect.DeepEqual(spec, tc.wantSpec) {
				t.Fatalf("EffectiveSetting = (%+v, %q), want (%+v, %q)", spec, name, tc.wantSpec, tc.wantName)
			}
		})
	}
}

func TestErrConflictingSettingsMessage(t *testing.T) {
	err := &ErrConflictingSettings{Role: "ClusterRole admin", Names: []string{"alpha", "mid", "zeta"}}
	want := "ClusterRole admin is governed by more than one RoleSetting (alpha, mid, zeta); kubepim refuses to guess which applies: ask your platform team to keep one"
	if err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestSettingRoleRef(t *testing.T) {
	cases := []struct {
		name      string
		roleRef   pimv1.RoleRef
		namespace string
		want      pimv1.RoleSettingRoleRef
	}{
		{"ClusterRole bound in a namespace", pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}, "prod",
			pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}},
		{"ClusterRole bound cluster-wide", pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}, "",
			pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}},
		{"Role keeps its namespace", pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "deployer"}, "prod",
			pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindRole, Name: "deployer", Namespace: "prod"}},
		{"Role of another namespace", pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "deployer"}, "staging",
			pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindRole, Name: "deployer", Namespace: "staging"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SettingRoleRef(tc.roleRef, tc.namespace); got != tc.want {
				t.Fatalf("SettingRoleRef = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWeakensIdleTimeout(t *testing.T) {
	with := func(d time.Duration) pimv1.RoleSettingSpec {
		s := pimv1.RoleSettingSpec{}
		if d > 0 {
			s.Activation.IdleTimeout = &metav1.Duration{Duration: d}
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		old, new time.Duration
		weakens  bool
	}{
		{"added", 0, 30 * time.Minute, false},
		{"shortened", time.Hour, 30 * time.Minute, false},
		{"raised", 30 * time.Minute, time.Hour, true},
		{"removed", 30 * time.Minute, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Weakens(with(tc.old), with(tc.new))
			if (len(got) > 0) != tc.weakens || (tc.weakens && got[0] != "activation.idleTimeout raised or removed") {
				t.Fatalf("Weakens = %q, want weakening %v", got, tc.weakens)
			}
		})
	}
}
