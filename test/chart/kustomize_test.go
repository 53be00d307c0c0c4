package chart_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/kubepim/kubepim/internal/certs"
)

// kustomize renders config/default as `kubectl apply -k` would.
func kustomize() []*unstructured.Unstructured {
	GinkgoHelper()
	return kustomizeDir("config/default")
}

// kustomizeDir renders a directory of config/.
func kustomizeDir(dir string) []*unstructured.Unstructured {
	GinkgoHelper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), root+"/"+dir)
	Expect(err).NotTo(HaveOccurred())
	out, err := m.AsYaml()
	Expect(err).NotTo(HaveOccurred())
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func objKey(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// managerFlags returns the manager's flags with their values, the flags
// left out filled in with the manager's defaults, so that the chart (which
// spells every certificate flag out) and config/ (which relies on the
// defaults) compare equal when they configure the same thing.
func managerFlags(d *unstructured.Unstructured) map[string]string {
	GinkgoHelper()
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	Expect(containers).To(HaveLen(1))
	flags := map[string]string{
		"--cert-secret-name":                 certs.DefaultSecretName,
		"--webhook-service-name":             certs.DefaultServiceName,
		"--mutating-webhook-configuration":   certs.DefaultMutatingWebhookConfiguration,
		"--validating-webhook-configuration": certs.DefaultValidatingWebhookConfiguration,
		"--cert-ca-validity":                 certs.DefaultCAValidity.String(),
		"--cert-validity":                    certs.DefaultCertValidity.String(),
		"--cert-renew-before":                certs.DefaultRenewBefore.String(),
		"--cert-check-interval":              certs.DefaultCheckInterval.String(),
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	for _, a := range args {
		k, v, found := strings.Cut(a, "=")
		if !found {
			v = "true"
		}
		if strings.HasSuffix(k, "validity") || strings.HasSuffix(k, "renew-before") || strings.HasSuffix(k, "interval") {
			dur, err := time.ParseDuration(v)
			Expect(err).NotTo(HaveOccurred())
			v = dur.String()
		}
		flags[k] = v
	}
	return flags
}

var _ = Describe("config/default (kustomize)", func() {
	It("makes the same objects as the chart's default release, configured the same way", func() {
		kust := map[string]*unstructured.Unstructured{}
		for _, o := range kustomize() {
			if o.GetKind() == "Namespace" {
				Expect(o.GetName()).To(Equal("kubepim-system"))
				continue
			}
			kust[objKey(o)] = o
		}
		chart := map[string]*unstructured.Unstructured{}
		for _, o := range render(release{name: "kubepim", namespace: "kubepim-system"}) {
			if o.GetNamespace() == "" && namespaced(o.GetKind()) {
				o.SetNamespace("kubepim-system")
			}
			chart[objKey(o)] = o
		}
		keys := func(m map[string]*unstructured.Unstructured) []string {
			var out []string
			for k := range m {
				out = append(out, k)
			}
			return out
		}
		Expect(keys(kust)).To(ConsistOf(keys(chart)))

		field := func(o *unstructured.Unstructured, path ...string) any {
			v, _, err := unstructured.NestedFieldNoCopy(o.Object, path...)
			Expect(err).NotTo(HaveOccurred())
			return v
		}
		for k, c := range chart {
			kc := kust[k]
			switch c.GetKind() {
			case "ClusterRole", "Role":
				Expect(field(kc, "rules")).To(Equal(field(c, "rules")), k)
			case "ClusterRoleBinding", "RoleBinding":
				Expect(field(kc, "roleRef")).To(Equal(field(c, "roleRef")), k)
				Expect(field(kc, "subjects")).To(Equal(field(c, "subjects")), k)
			case "CustomResourceDefinition":
				Expect(field(kc, "spec")).To(Equal(field(c, "spec")), k)
			case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
				// config/ leaves timeoutSeconds to the API server's default
				// of 10 s, the chart's default value.
				for _, w := range field(kc, "webhooks").([]any) {
					if _, ok := w.(map[string]any)["timeoutSeconds"]; !ok {
						w.(map[string]any)["timeoutSeconds"] = field(c, "webhooks").([]any)[0].(map[string]any)["timeoutSeconds"]
					}
				}
				Expect(field(c, "webhooks").([]any)[0].(map[string]any)["timeoutSeconds"]).To(BeNumerically("==", 10))
				Expect(field(kc, "webhooks")).To(Equal(field(c, "webhooks")), k)
			case "Service":
				Expect(field(kc, "spec", "ports")).To(Equal(field(c, "spec", "ports")), k)
			case "Secret":
				Expect(field(kc, "type")).To(Equal(field(c, "type")), k)
				Expect(field(kc, "data")).To(BeNil(), k)
				Expect(field(c, "data")).To(BeNil(), k)
			case "PodDisruptionBudget":
				Expect(field(kc, "spec", "minAvailable")).To(Equal(field(c, "spec", "minAvailable")), k)
			case "Deployment":
				Expect(field(kc, "spec", "replicas")).To(Equal(field(c, "spec", "replicas")), k)
				pod := []string{"spec", "template", "spec"}
				for _, f := range []string{"securityContext", "volumes", "serviceAccountName", "terminationGracePeriodSeconds"} {
					Expect(field(kc, append(pod, f)...)).To(Equal(field(c, append(pod, f)...)), "%s %s", k, f)
				}
				kcon := field(kc, append(pod, "containers")...).([]any)[0].(map[string]any)
				ccon := field(c, append(pod, "containers")...).([]any)[0].(map[string]any)
				for _, f := range []string{"securityContext", "resources", "ports", "volumeMounts", "env", "livenessProbe", "readinessProbe", "command"} {
					Expect(kcon[f]).To(Equal(ccon[f]), "%s container %s", k, f)
				}
				Expect(managerFlags(kc)).To(Equal(managerFlags(c)), k)
			}
		}
	})
})

var _ = Describe("config/console (kustomize)", func() {
	It("deploys the console like the chart, with a ServiceAccount bound to nothing", func() {
		objs := kustomizeDir("config/console")
		Expect(kinds(objs)).To(Equal(map[string]int{"ServiceAccount": 1, "Deployment": 1, "Service": 1}))
		for _, o := range objs {
			Expect(o.GetNamespace()).To(Equal("kubepim-system"), objKey(o))
			Expect(o.GetName()).To(Equal("kubepim-console"), objKey(o))
		}
		r := release{name: "kubepim-console-kustomize", namespace: "kubepim-system"}
		apply(r, objs)
		expectConsoleBoundToNothing("kubepim-system", "kubepim-console", objs)

		// The same flags as the chart's console with the same values.
		flags := func(d *unstructured.Unstructured) []string {
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			Expect(containers).To(HaveLen(1))
			args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
			var names []string
			for _, a := range args {
				name, _, _ := strings.Cut(a, "=")
				names = append(names, name)
			}
			return names
		}
		var chart *unstructured.Unstructured
		for _, d := range find(render(release{name: "kubepim", namespace: "kubepim-system", set: consoleValues}), "Deployment") {
			if d.GetName() == "kubepim-console" {
				chart = d
			}
		}
		Expect(chart).NotTo(BeNil())
		Expect(flags(find(objs, "Deployment")[0])).To(ConsistOf(flags(chart)))
	})
})
