package chart_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The Kubernetes version helm renders for: helm built with go install
// defaults to v1.20, below the chart's kubeVersion.
const kubeVersion = "1.37.2"

type release struct {
	name, namespace string
	set             []string
}

// render runs helm template for r.
func render(r release) []*unstructured.Unstructured {
	GinkgoHelper()
	args := []string{"template", r.name, root + "/charts/kubepim", "--namespace", r.namespace, "--kube-version", kubeVersion}
	for _, s := range r.set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "helm %v: %s", args, stderr.String())
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	Expect(objs).NotTo(BeEmpty())
	return objs
}

// apply creates the release namespace and server-side applies every object,
// CRDs first (as helm and kubectl order them), waiting for them to be
// established before the rest.
func apply(r release, objs []*unstructured.Unstructured) {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.namespace}}
	if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, o := range crds {
		Expect(ssa(o)).To(Succeed(), "CRD %s", o.GetName())
	}
	for _, o := range crds {
		Eventually(func(g Gomega) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: o.GetName()}, crd)).To(Succeed())
			g.Expect(crd.Status.Conditions).To(ContainElement(And(
				HaveField("Type", apiextensionsv1.Established), HaveField("Status", apiextensionsv1.ConditionTrue))))
		}).Should(Succeed())
	}
	for _, o := range rest {
		// A namespaced object without a namespace (helm template leaves
		// some to the client) lands in the release namespace, as with
		// `kubectl apply -n`.
		if o.GetNamespace() == "" && namespaced(o.GetKind()) {
			o.SetNamespace(r.namespace)
		}
		Expect(ssa(o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
	}
}

func ssa(o *unstructured.Unstructured) error {
	return k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
		client.FieldOwner("kubepim-chart-test"), client.ForceOwnership)
}

func namespaced(kind string) bool {
	switch kind {
	case "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
		return false
	}
	return true
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.GetKind()]++
	}
	return m
}

func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// stubCRDs stands in for the Prometheus Operator's and cert-manager's CRDs:
// the kinds and scopes are real, the schemas accept anything.
func stubCRDs() []*apiextensionsv1.CustomResourceDefinition {
	stub := func(group, kind, plural string) *apiextensionsv1.CustomResourceDefinition {
		return &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: group, Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true)}},
				}},
			},
		}
	}
	return []*apiextensionsv1.CustomResourceDefinition{
		stub("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
		stub("cert-manager.io", "Certificate", "certificates"),
		stub("cert-manager.io", "Issuer", "issuers"),
	}
}

// deployment returns the manager's Deployment as applied.
func deployment(r release) *appsv1.Deployment {
	GinkgoHelper()
	d := &appsv1.Deployment{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: r.name + "-controller-manager"}, d)).To(Succeed())
	return d
}

// expectFailClosed checks that both webhook configurations exist, that every
// webhook refuses requests when kubepim cannot answer, and that they call
// the release's webhook Service.
func expectFailClosed(r release) {
	GinkgoHelper()
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Name: r.name + "-mutating-webhook-configuration"}, mwc)).To(Succeed())
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Name: r.name + "-validating-webhook-configuration"}, vwc)).To(Succeed())
	Expect(mwc.Webhooks).NotTo(BeEmpty())
	Expect(vwc.Webhooks).NotTo(BeEmpty())
	check := func(name string, fp *admissionregistrationv1.FailurePolicyType, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations) {
		Expect(fp).To(HaveValue(Equal(admissionregistrationv1.Fail)), name)
		Expect(cc.Service).NotTo(BeNil(), name)
		Expect(cc.Service.Name).To(Equal(r.name+"-webhook-service"), name)
		Expect(cc.Service.Namespace).To(Equal(r.namespace), name)
		for _, rule := range rules {
			Expect(rule.APIGroups).To(ConsistOf("kubepim.io"), "%s: only kubepim's own resources", name)
		}
	}
	for _, w := range mwc.Webhooks {
		check(w.Name, w.FailurePolicy, w.ClientConfig, w.Rules)
	}
	for _, w := range vwc.Webhooks {
		check(w.Name, w.FailurePolicy, w.ClientConfig, w.Rules)
	}
}

// consoleValues are the console's required values.
var consoleValues = []string{"console.enabled=true", "console.url=https://pim.example.com", "console.issuerURL=https://login.example.com",
	"console.clientSecret.secretName=console-oidc", "console.sessionKeys.secretName=console-sessions"}

// expectConsoleBoundToNothing checks that no rendered binding names the
// console's ServiceAccount, that none in the API server does (by name, as
// its user, or through its namespace's ServiceAccount group), and that the
// API server allows it nothing on kubepim's objects, RBAC or Secrets, nor
// impersonation, as itself or through the ServiceAccount groups. (A
// binding to system:authenticated, such as the requester role's usual one,
// reaches every identity; the console's pods get no token to use it.)
func expectConsoleBoundToNothing(namespace, sa string, objs []*unstructured.Unstructured) {
	GinkgoHelper()
	user := "system:serviceaccount:" + namespace + ":" + sa
	names := func(s rbacv1.Subject) bool {
		return (s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && s.Namespace == namespace) ||
			(s.Kind == rbacv1.UserKind && s.Name == user) || (s.Kind == rbacv1.GroupKind && s.Name == "system:serviceaccounts:"+namespace)
	}
	for _, o := range append(find(objs, "RoleBinding"), find(objs, "ClusterRoleBinding")...) {
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, raw := range subjects {
			m := raw.(map[string]any)
			s := rbacv1.Subject{Kind: fmt.Sprint(m["kind"]), Name: fmt.Sprint(m["name"]), Namespace: fmt.Sprint(m["namespace"])}
			Expect(names(s)).To(BeFalse(), "%s binds the console: %v", objKey(o), m)
		}
	}
	var crbs rbacv1.ClusterRoleBindingList
	Expect(k8sClient.List(ctx, &crbs)).To(Succeed())
	for _, b := range crbs.Items {
		Expect(slices.ContainsFunc(b.Subjects, names)).To(BeFalse(), "ClusterRoleBinding %s binds the console", b.Name)
	}
	var rbs rbacv1.RoleBindingList
	Expect(k8sClient.List(ctx, &rbs)).To(Succeed())
	for _, b := range rbs.Items {
		Expect(slices.ContainsFunc(b.Subjects, names)).To(BeFalse(), "RoleBinding %s/%s binds the console", b.Namespace, b.Name)
	}
	for _, a := range []authorizationv1.ResourceAttributes{
		{Group: "kubepim.io", Resource: "activationrequests", Verb: "list"},
		{Group: "kubepim.io", Resource: "activationrequests", Verb: "patch"},
		{Group: "kubepim.io", Resource: "accessreviewitems", Verb: "patch"},
		{Group: "kubepim.io", Resource: "auditevents", Verb: "list"},
		{Group: "kubepim.io", Resource: "roleassignments", Verb: "create"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Verb: "create"},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Verb: "create", Namespace: "default"},
		{Resource: "secrets", Verb: "get", Namespace: namespace},
		{Resource: "serviceaccounts", Verb: "create", Subresource: "token", Namespace: namespace},
		{Resource: "users", Verb: "impersonate"},
		{Resource: "groups", Verb: "impersonate"},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace},
			ResourceAttributes: &a}}
		Expect(k8sClient.Create(ctx, sar)).To(Succeed())
		Expect(sar.Status.Allowed).To(BeFalse(), "the console's ServiceAccount may %s %s.%s", a.Verb, a.Resource, a.Group)
	}
}

var _ = Describe("helm template charts/kubepim, applied to an API server", Ordered, func() {
	def := release{name: "kubepim", namespace: "kubepim-system"}

	It("applies the default values: CRDs kept on uninstall, 2 hardened replicas, fail-closed webhooks, built-in certificates", func() {
		objs := render(def)
		bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(kinds(objs)).To(Equal(map[string]int{
			"CustomResourceDefinition": len(bases), "ServiceAccount": 1, "Deployment": 1, "PodDisruptionBudget": 1,
			"Service": 2, "Secret": 1, "MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1,
			// manager, cert-rotator; requester, approver, admin, auditor, metrics-reader
			"ClusterRole": 7, "ClusterRoleBinding": 2,
			// manager, leader-election, cert-rotator
			"Role": 3, "RoleBinding": 3,
		}))
		apply(def, objs)

		for _, crd := range find(objs, "CustomResourceDefinition") {
			Expect(crd.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"), crd.GetName())
		}
		d := deployment(def)
		Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
		pod := d.Spec.Template.Spec
		Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
		Expect(pod.Containers).To(HaveLen(1))
		c := pod.Containers[0]
		Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
		Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
		Expect(c.Resources.Requests).NotTo(BeEmpty())
		Expect(c.Resources.Limits).NotTo(BeEmpty())
		Expect(c.Args).To(ContainElements("--leader-elect=true", "--metrics-secure=true", "--cert-management=builtin"))

		pdb := &policyv1.PodDisruptionBudget{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: def.namespace, Name: "kubepim-controller-manager"}, pdb)).To(Succeed())
		Expect(pdb.Spec.MinAvailable.IntValue()).To(Equal(1))

		// Secure metrics: the manager reviews scrapers' tokens and rights.
		role := &rbacv1.ClusterRole{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: "kubepim-manager"}, role)).To(Succeed())
		Expect(role.Rules).To(ContainElement(And(
			HaveField("APIGroups", ConsistOf("authentication.k8s.io")), HaveField("Resources", ContainElement("tokenreviews")), HaveField("Verbs", ContainElement("create")))))
		Expect(role.Rules).To(ContainElement(And(
			HaveField("APIGroups", ConsistOf("authorization.k8s.io")), HaveField("Resources", ContainElement("subjectaccessreviews")), HaveField("Verbs", ContainElement("create")))))

		// The certificate Secret starts empty: the manager fills it.
		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: def.namespace, Name: "kubepim-webhook-server-cert"}, secret)).To(Succeed())
		Expect(secret.Data).To(BeEmpty())
		Expect(pod.Volumes).To(ContainElement(HaveField("Secret.SecretName", "kubepim-webhook-server-cert")))
		expectFailClosed(def)

		By("applying the same manifests again, as an upgrade does")
		apply(def, render(def))
	})

	It("applies with cert-manager, a ServiceMonitor and the CRDs left out, under another release name", func() {
		// A release name that contains the chart name is the objects' prefix.
		r := release{name: "kubepim-cm", namespace: "pim-system", set: []string{
			"certManager.enabled=true", "metrics.serviceMonitor.enabled=true", "crds.enabled=false",
			"userRoles.bindings.requester[0].kind=Group", "userRoles.bindings.requester[0].name=system:authenticated",
			"userRoles.bindings.requester[0].apiGroup=rbac.authorization.k8s.io",
		}}
		objs := render(r)
		k := kinds(objs)
		Expect(k).NotTo(HaveKey("CustomResourceDefinition"))
		Expect(k).NotTo(HaveKey("Secret"), "cert-manager makes the Secret")
		Expect(k).To(HaveKeyWithValue("Certificate", 1))
		Expect(k).To(HaveKeyWithValue("Issuer", 1))
		Expect(k).To(HaveKeyWithValue("ServiceMonitor", 1))
		Expect(k).To(HaveKeyWithValue("Role", 2), "no cert-rotator Role")
		Expect(k).To(HaveKeyWithValue("ClusterRoleBinding", 2), "manager and requester")
		apply(r, objs)

		c := deployment(r).Spec.Template.Spec.Containers[0]
		Expect(c.Args).To(ContainElement("--cert-management=external"))
		Expect(slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--cert-secret-name") })).To(BeFalse())
		expectFailClosed(r)
		for _, name := range []string{"kubepim-cm-mutating-webhook-configuration", "kubepim-cm-validating-webhook-configuration"} {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("admissionregistration.k8s.io/v1")
			u.SetKind(map[bool]string{true: "MutatingWebhookConfiguration", false: "ValidatingWebhookConfiguration"}[strings.Contains(name, "mutating")])
			Expect(k8sClient.Get(ctx, types.NamespacedName{Name: name}, u)).To(Succeed())
			Expect(u.GetAnnotations()).To(HaveKeyWithValue("cert-manager.io/inject-ca-from", "pim-system/kubepim-cm-serving-cert"))
		}
		sm := &unstructured.Unstructured{}
		sm.SetAPIVersion("monitoring.coreos.com/v1")
		sm.SetKind("ServiceMonitor")
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: "kubepim-cm-controller-manager"}, sm)).To(Succeed())
		endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		Expect(endpoints).To(HaveLen(1))
		Expect(endpoints[0]).To(HaveKeyWithValue("scheme", "https"))
		Expect(endpoints[0]).To(HaveKey("bearerTokenFile"))
	})

	It("renders CRDs without the keep annotation, plain-HTTP metrics and a single replica when asked", func() {
		objs := render(release{name: "kubepim", namespace: "kubepim-system", set: []string{
			"crds.keep=false", "metrics.secure=false", "replicaCount=1", "metrics.serviceMonitor.enabled=true"}})
		for _, crd := range find(objs, "CustomResourceDefinition") {
			Expect(crd.GetAnnotations()).NotTo(HaveKey("helm.sh/resource-policy"))
		}
		Expect(kinds(objs)).NotTo(HaveKey("PodDisruptionBudget"), "a PDB of minAvailable 1 would block every drain with one replica")
		sm := find(objs, "ServiceMonitor")
		Expect(sm).To(HaveLen(1))
		endpoints, _, _ := unstructured.NestedSlice(sm[0].Object, "spec", "endpoints")
		Expect(endpoints[0]).To(HaveKeyWithValue("scheme", "http"))
		d := find(objs, "Deployment")[0]
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		Expect(fmt.Sprint(containers[0].(map[string]any)["args"])).To(ContainSubstring("--metrics-secure=false"))
	})

	It("refuses values the schema does not know", func() {
		cmd := exec.Command(helm, "template", "x", root+"/charts/kubepim", "--kube-version", kubeVersion, "--set", "replicas=3")
		out, err := cmd.CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("replicas"))
	})

	It("deploys the console as its own Deployment, Service and Ingress, with a ServiceAccount bound to nothing", func() {
		r := release{name: "kubepim-ui", namespace: "pim-ui", set: append([]string{"crds.enabled=false", "console.ingress.enabled=true",
			"console.ingress.tls[0].secretName=pim-tls", "console.ingress.tls[0].hosts[0]=pim.example.com"}, consoleValues...)}
		objs := render(r)
		k := kinds(objs)
		Expect(k).To(HaveKeyWithValue("ServiceAccount", 2), "the manager's and the console's")
		Expect(k).To(HaveKeyWithValue("Deployment", 2))
		Expect(k).To(HaveKeyWithValue("Service", 3), "webhook, metrics, console")
		Expect(k).To(HaveKeyWithValue("Ingress", 1))
		apply(r, objs)
		expectConsoleBoundToNothing(r.namespace, "kubepim-ui-console", objs)

		d := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: "kubepim-ui-console"}, d)).To(Succeed())
		Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
		pod := d.Spec.Template.Spec
		Expect(pod.ServiceAccountName).To(Equal("kubepim-ui-console"))
		Expect(pod.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
		Expect(pod.Containers).To(HaveLen(1))
		c := pod.Containers[0]
		Expect(c.Command).To(Equal([]string{"/console"}))
		Expect(c.Args).To(ContainElements("--console-url=https://pim.example.com", "--issuer-url=https://login.example.com",
			"--client-id=kubepim-console", "--kubepim-namespace=pim-ui", "--apiserver-ca-file=/etc/kubepim-console/kube-root-ca/ca.crt",
			"--client-secret-file=/etc/kubepim-console/client-secret/client-secret", "--session-key-file=/etc/kubepim-console/session-keys/session-keys"))
		Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(pod.Volumes).To(ContainElements(HaveField("Secret.SecretName", "console-oidc"), HaveField("Secret.SecretName", "console-sessions"),
			HaveField("ConfigMap.Name", "kube-root-ca.crt")))
		// The console's pods are not the manager's: neither selects the other.
		Expect(d.Spec.Selector.MatchLabels).To(HaveKeyWithValue("app.kubernetes.io/component", "console"))
		Expect(deployment(r).Spec.Selector.MatchLabels).To(HaveKeyWithValue("control-plane", "controller-manager"))
		Expect(deployment(r).Spec.Template.Spec.Containers[0].Args).To(ContainElement("--console-url=https://pim.example.com"),
			"notifications link to the console")

		ing := find(objs, "Ingress")[0]
		rules, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
		Expect(rules).To(HaveLen(1))
		Expect(rules[0]).To(HaveKeyWithValue("host", "pim.example.com"))

		By("refusing to render without the console's URL, issuer and Secrets")
		for _, missing := range []string{"console.url", "console.issuerURL", "console.clientSecret.secretName", "console.sessionKeys.secretName"} {
			set := []string{"console.enabled=true"}
			for _, v := range consoleValues {
				if !strings.HasPrefix(v, missing+"=") {
					set = append(set, v)
				}
			}
			args := []string{"template", "x", root + "/charts/kubepim", "--kube-version", kubeVersion}
			for _, v := range set {
				args = append(args, "--set", v)
			}
			out, err := exec.Command(helm, args...).CombinedOutput()
			Expect(err).To(HaveOccurred(), missing)
			Expect(string(out)).To(ContainSubstring(missing))
		}
	})

	Context("built-in certificate management on the chart's objects", Ordered, certSpecs)
})
