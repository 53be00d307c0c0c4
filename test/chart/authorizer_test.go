package chart_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// renderNotes renders the chart's NOTES.txt for r: helm template leaves the
// notes out, so a copy of the chart carries them as a ConfigMap.
func renderNotes(r release) string {
	GinkgoHelper()
	dir := filepath.Join(GinkgoT().TempDir(), "kubepim")
	Expect(os.CopyFS(dir, os.DirFS(filepath.Join(root, "charts", "kubepim")))).To(Succeed())
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	Expect(err).NotTo(HaveOccurred())
	Expect(os.Remove(filepath.Join(dir, "templates", "NOTES.txt"))).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "templates", "_notes_test.tpl"),
		[]byte(`{{- define "kubepim.test.notes" -}}`+string(notes)+`{{- end -}}`), 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "templates", "notes-test.yaml"),
		[]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ include \"kubepim.test.notes\" . | toJson }}\n"), 0o600)).To(Succeed())
	args := []string{"template", r.name, dir, "--namespace", r.namespace, "--kube-version", kubeVersion, "--show-only", "templates/notes-test.yaml"}
	for _, s := range r.set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "helm %v: %s", args, stderr.String())
	cm := &corev1.ConfigMap{}
	Expect(yaml.Unmarshal(out, cm)).To(Succeed())
	return cm.Data["notes"]
}

// notesBlock cuts the indented YAML document that starts with the line
// "   "+first out of the notes, up to the next blank line, and decodes it.
func notesBlock(notes, first string) map[string]any {
	GinkgoHelper()
	lines := strings.Split(notes, "\n")
	start := -1
	for i, l := range lines {
		if l == "   "+first {
			start = i
			break
		}
	}
	Expect(start).To(BeNumerically(">=", 0), "no %q in the notes:\n%s", first, notes)
	var doc []string
	for _, l := range lines[start:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		doc = append(doc, strings.TrimPrefix(l, "   "))
	}
	m := map[string]any{}
	Expect(yaml.Unmarshal([]byte(strings.Join(doc, "\n")), &m)).To(Succeed(), strings.Join(doc, "\n"))
	return m
}

var _ = Describe("accessMode", func() {
	It("passes bindings by default and prints no API server configuration", func() {
		r := release{name: "kubepim", namespace: "kubepim-system"}
		d := find(render(r), "Deployment")[0]
		Expect(toDeployment(d).Spec.Template.Spec.Containers[0].Args).To(ContainElement("--access-mode=bindings"))
		Expect(renderNotes(r)).NotTo(ContainSubstring("authorization-config"))
	})

	It("authorizer: passes --access-mode=authorizer, pins the webhook Service's ClusterIP, and the notes carry config/authorizer's configuration for this release", func() {
		r := release{name: "pim", namespace: "pim-system", set: []string{"accessMode=authorizer", "webhook.clusterIP=10.96.0.50"}}
		objs := render(r)
		Expect(toDeployment(find(objs, "Deployment")[0]).Spec.Template.Spec.Containers[0].Args).To(ContainElement("--access-mode=authorizer"))
		var svc *corev1.Service
		for _, o := range find(objs, "Service") {
			if o.GetName() == "pim-kubepim-webhook-service" {
				svc = &corev1.Service{}
				Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, svc)).To(Succeed())
			}
		}
		Expect(svc).NotTo(BeNil())
		Expect(svc.Spec.ClusterIP).To(Equal("10.96.0.50"))

		notes := renderNotes(r)
		kubeconfig := notesBlock(notes, "apiVersion: v1")
		Expect(kubeconfig).To(HaveKeyWithValue("clusters", ContainElement(HaveKeyWithValue("cluster", And(
			HaveKeyWithValue("server", "https://10.96.0.50:443/authorize"),
			HaveKeyWithValue("tls-server-name", "pim-kubepim-webhook-service.pim-system.svc"))))))
		Expect(notes).To(ContainSubstring("kubectl -n pim-system get secret pim-kubepim-webhook-server-cert"))

		By("the notes' AuthorizationConfiguration is config/authorizer's, with this release's ServiceAccount")
		got := notesBlock(notes, "apiVersion: apiserver.config.k8s.io/v1")
		raw, err := os.ReadFile(filepath.Join(root, "config", "authorizer", "authorization-config.yaml"))
		Expect(err).NotTo(HaveOccurred())
		want := map[string]any{}
		Expect(yaml.Unmarshal([]byte(strings.ReplaceAll(string(raw),
			"system:serviceaccount:kubepim-system:kubepim-controller-manager", "system:serviceaccount:pim-system:pim-kubepim-controller-manager")), &want)).To(Succeed())
		Expect(got).To(Equal(want))

		By("without a pinned ClusterIP the notes say to pin it")
		Expect(renderNotes(release{name: "pim", namespace: "pim-system", set: []string{"accessMode=authorizer"}})).
			To(ContainSubstring("<ClusterIP of Service pim-kubepim-webhook-service: pin it with webhook.clusterIP>"))
	})

	It("refuses an unknown access mode", func() {
		out, err := exec.Command(helm, "template", "x", root+"/charts/kubepim", "--kube-version", kubeVersion, "--set", "accessMode=webhook").CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("accessMode"))
	})
})

func toDeployment(u *unstructured.Unstructured) *appsv1.Deployment {
	GinkgoHelper()
	d := &appsv1.Deployment{}
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d)).To(Succeed())
	return d
}
