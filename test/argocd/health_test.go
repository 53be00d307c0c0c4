// Package argocd tests config/argocd/health.lua, the Argo CD health check
// of kubepim's kinds, with gopher-lua (the Lua interpreter Argo CD embeds),
// the way Argo CD runs it: the object as the global obj, a table with status
// and message returned.
package argocd

import (
	"os"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const script = "../../config/argocd/health.lua"

type health struct{ Status, Message string }

// run evaluates the health script over obj (YAML).
func run(t *testing.T, src, obj string) health {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(obj), &m); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, m))
	fn, err := L.LoadString(src)
	if err != nil {
		t.Fatal(err)
	}
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the script returned %s, not a table", L.Get(-1).Type())
	}
	return health{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}
}

// toLua converts decoded JSON as Argo CD does: objects to tables, arrays to
// 1-based sequences, numbers to Lua numbers.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	}
	panic("unexpected JSON value")
}

func readScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHealth(t *testing.T) {
	src := readScript(t)
	cases := []struct {
		name, obj, want, message string
	}{
		{"RoleSetting in force", `
kind: RoleSetting
metadata: {name: admin, generation: 2}
status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "True", reason: Valid, message: policy in force}
  - {type: Conflict, status: "False", reason: NoConflict}`, "Healthy", "policy in force"},
		{"RoleSetting just applied (no status yet)", `
kind: RoleSetting
metadata: {name: admin, generation: 1}`, "Progressing", ""},
		{"RoleSetting changed, not yet observed", `
kind: RoleSetting
metadata: {name: admin, generation: 3}
status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "True", reason: Valid}`, "Progressing", "generation 3"},
		{"RoleSetting in conflict", `
kind: RoleSetting
metadata: {name: admin, generation: 1}
status:
  observedGeneration: 1
  conditions:
  - {type: Ready, status: "False", reason: MultipleRoleSettings, message: also governed by admin-2}
  - {type: Stalled, status: "True", reason: MultipleRoleSettings, message: also governed by admin-2}`, "Degraded", "admin-2"},
		{"RoleAssignment eligible", `
kind: RoleAssignment
metadata: {name: alice, generation: 1}
status:
  observedGeneration: 1
  state: Eligible
  conditions:
  - {type: Ready, status: "True", reason: Eligible, message: eligible}`, "Healthy", "eligible"},
		{"RoleAssignment with a reconcile error", `
kind: RoleAssignment
metadata: {name: alice, generation: 1}
status:
  observedGeneration: 1
  conditions:
  - {type: Ready, status: "False", reason: ReconcileError, message: the API server timed out}`, "Progressing", "timed out"},
		{"ActivationRequest failed", `
kind: ActivationRequest
metadata: {name: alice-jit, generation: 1}
status:
  observedGeneration: 1
  state: Failed
  conditions:
  - {type: Ready, status: "False", reason: Failed, message: role gone}
  - {type: Stalled, status: "True", reason: Failed, message: role gone}`, "Degraded", "role gone"},
		{"NotificationChannel without its Secret", `
kind: NotificationChannel
metadata: {name: slack, generation: 1}
status:
  observedGeneration: 1
  conditions:
  - {type: Stalled, status: "True", reason: SecretMissing, message: Secret slack not found}
  - {type: Ready, status: "False", reason: SecretMissing, message: Secret slack not found}`, "Degraded", "Secret slack"},
		{"AccessReview running", `
kind: AccessReview
metadata: {name: q3, generation: 1}
status:
  observedGeneration: 1
  state: InProgress
  conditions:
  - {type: Ready, status: "True", reason: InProgress, message: instance 1}`, "Healthy", "instance 1"},
		{"AuditEvent", `
kind: AuditEvent
metadata: {name: activated-abc}
spec: {action: Activated}`, "Healthy", ""},
		{"Notification pending", `
kind: Notification
metadata: {name: n1, generation: 1}
status: {phase: Pending, attempts: 1}`, "Progressing", ""},
		{"Notification given up", `
kind: Notification
metadata: {name: n1, generation: 1}
status: {phase: Failed, lastError: 410 Gone}`, "Degraded", "410 Gone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, src, tc.obj)
			if got.Status != tc.want || !strings.Contains(got.Message, tc.message) {
				t.Errorf("health = %+v, want %s with message containing %q", got, tc.want, tc.message)
			}
		})
	}
}

// TestConfigMapInStep checks that the argocd-cm snippet carries health.lua,
// unchanged, for every kubepim kind.
func TestConfigMapInStep(t *testing.T) {
	src := readScript(t)
	b, err := os.ReadFile("../../config/argocd/argocd-cm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"AccessReview", "ActivationRequest", "AuditEvent", "Notification", "NotificationChannel", "RoleAssignment", "RoleSetting"} {
		key := "resource.customizations.health.kubepim.io_" + kind
		if cm.Data[key] != src {
			t.Errorf("%s in config/argocd/argocd-cm.yaml differs from health.lua: run hack/gen-argocd-cm.sh", key)
		}
	}
}
