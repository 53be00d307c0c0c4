package controllers

import (
	"fmt"
	"runtime"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkRoleIndex50k measures the live heap the outside-bindings watch
// keeps for 50,000 bindings (40,000 RoleBindings in 200 namespaces and
// 10,000 ClusterRoleBindings, to 50 different roles): what the manager
// holds for bindings it has no use for but to notice a new one. Run with
// `go test ./controllers -run '^$' -bench RoleIndex50k -benchtime 3x`.
func BenchmarkRoleIndex50k(b *testing.B) {
	for b.Loop() {
		measure50k(b, func() (add func(any), keep any) {
			rb, crb := newRoleIndex("RoleBinding"), newRoleIndex("ClusterRoleBinding")
			return func(obj any) {
				if _, ok := obj.(*rbacv1.RoleBinding); ok {
					_ = rb.Add(obj)
				} else {
					_ = crb.Add(obj)
				}
			}, []*roleIndex{rb, crb}
		})
	}
}

// BenchmarkSlimStore50k is the alternative measured side by side: a
// client-go informer store (as controller-runtime's cache keeps one) with
// the namespace index and an index by roleRef, holding each binding
// stripped to name, namespace, uid, resourceVersion, labels, roleRef and
// subjects.
func BenchmarkSlimStore50k(b *testing.B) {
	byRole := func(obj any) ([]string, error) {
		switch x := obj.(type) {
		case *rbacv1.RoleBinding:
			return []string{x.RoleRef.Kind + "/" + x.RoleRef.Name}, nil
		case *rbacv1.ClusterRoleBinding:
			return []string{x.RoleRef.Kind + "/" + x.RoleRef.Name}, nil
		}
		return nil, nil
	}
	for b.Loop() {
		measure50k(b, func() (add func(any), keep any) {
			indexers := toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc, "roleRef": byRole}
			rb := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, indexers)
			crb := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, indexers)
			return func(obj any) {
				slim := stripBinding(obj.(client.Object))
				slim.SetAnnotations(nil)
				if _, ok := slim.(*rbacv1.RoleBinding); ok {
					_ = rb.Add(slim)
				} else {
					_ = crb.Add(slim)
				}
			}, []toolscache.Indexer{rb, crb}
		})
	}
}

// measure50k reports the live heap of what newStore builds from 40,000
// RoleBindings in 200 namespaces and 10,000 ClusterRoleBindings, to 50
// roles.
func measure50k(b *testing.B, newStore func() (add func(any), keep any)) {
	const rbs, crbs, namespaces, roles = 40000, 10000, 200, 50
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	add, keep := newStore()
	for i := range rbs {
		add(&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-binding-%06d", i), Namespace: fmt.Sprintf("team-%03d", i%namespaces),
				ResourceVersion: fmt.Sprint(1000000 + i), UID: "0b5d2a3e-3c5e-4a6f-9e0e-5b2d8a3f1c7d"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fmt.Sprintf("role-%02d", i%roles)},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%06d", i)}},
		})
	}
	for i := range crbs {
		add(&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cluster-binding-%06d", i), ResourceVersion: fmt.Sprint(2000000 + i)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fmt.Sprintf("role-%02d", i%roles)},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%06d", i)}},
		})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(live/(1<<20), "MiB/50k")
	b.ReportMetric(live/(rbs+crbs), "B/binding")
	runtime.KeepAlive(keep)
}
