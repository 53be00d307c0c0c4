package controllers_test

import (
	"context"
	"net/http"
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubepim/kubepim/internal/authz"
)

var _ = Describe("The metrics endpoint's authentication and authorization", func() {
	ctx := context.Background()

	It("refuses a missing or invalid token (401) and a user without the role (403), and serves one with it", func() {
		httpClient, err := rest.HTTPClientFor(env.ManagerConfig)
		Expect(err).NotTo(HaveOccurred())
		filter, err := authz.MetricsFilter(env.ManagerConfig, httpClient)
		Expect(err).NotTo(HaveOccurred())
		handler, err := filter(logf.Log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
		Expect(err).NotTo(HaveOccurred())
		srv := httptest.NewServer(handler)
		DeferCleanup(srv.Close)

		scrape := func(token string) int {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/metrics", nil)
			Expect(err).NotTo(HaveOccurred())
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		tokenOf := func(name string) string {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kubepimNamespace}}
			create(sa)
			tr := &authenticationv1.TokenRequest{}
			Expect(k8s.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
			return tr.Status.Token
		}

		Expect(scrape("")).To(Equal(http.StatusUnauthorized))
		Expect(scrape("not-a-token")).To(Equal(http.StatusUnauthorized))
		stranger := tokenOf(uniq("stranger"))
		Expect(scrape(stranger)).To(Equal(http.StatusForbidden))

		scraperName := uniq("scraper")
		scraper := tokenOf(scraperName)
		reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("metrics-reader")},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		create(reader)
		create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: reader.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: scraperName, Namespace: kubepimNamespace}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name}})
		Eventually(func() int { return scrape(scraper) }).Should(Equal(http.StatusOK))
		Expect(scrape(stranger)).To(Equal(http.StatusForbidden))
	})
})
