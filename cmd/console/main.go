// Command console is kubepim's web console: My roles, Activate, My
// requests and Approve requests in a browser, signed in with the
// organisation's OpenID provider. It has no power of its own: every API
// request is made with the signed-in user's own ID token as the bearer
// token, so RBAC, kubepim's webhooks and the audit trail treat a click
// exactly as the same user's kubectl command. See docs/console.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	var (
		listen, certFile, keyFile, consoleURL                string
		issuerURL, issuerCAFile, clientID, clientSecretFile  string
		sessionKeyFile, kubeconfig, mfaClaim, mfaValues      string
		namespace, extraScopes, apiserverToken               string
		reviewPageSize, assignmentPageSize, approvalPageSize int
		apiserverURL, apiserverCAFile                        string
		sessionMaxAge                                        time.Duration
	)
	flag.StringVar(&listen, "listen-address", ":8443", "Address to serve on.")
	flag.StringVar(&certFile, "tls-cert-file", "", "Serving certificate (PEM). Without it the console serves plain HTTP, for a proxy or Ingress that terminates TLS: browsers must still reach it over https.")
	flag.StringVar(&keyFile, "tls-key-file", "", "Serving certificate's key (PEM).")
	flag.StringVar(&consoleURL, "console-url", "", "The console's https URL as browsers reach it; the OIDC redirect URI is <console-url>/auth/callback.")
	flag.StringVar(&issuerURL, "issuer-url", "", "The OpenID provider's issuer URL (the one kube-apiserver trusts).")
	flag.StringVar(&issuerCAFile, "issuer-ca-file", "", "CA bundle (PEM) for the provider's certificate; default: the system's roots.")
	flag.StringVar(&clientID, "client-id", "kubepim-console", "The console's OAuth client ID (the ID tokens' audience, as kube-apiserver expects).")
	flag.StringVar(&clientSecretFile, "client-secret-file", "", "File holding the client secret (mount it from a Secret).")
	flag.StringVar(&sessionKeyFile, "session-key-file", "", "File of session keys, one a line, newest first, each at least 32 bytes (mount it from a Secret all replicas share).")
	flag.DurationVar(&sessionMaxAge, "session-max-age", 12*time.Hour, "A session ends this long after sign-in, refreshed or not.")
	flag.StringVar(&kubeconfig, "kubeconfig", "", "Kubeconfig naming the API server (only its address and CA are used, never its credentials).")
	flag.StringVar(&apiserverURL, "apiserver-url", "", "The API server's URL; default: in-cluster (https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT).")
	flag.StringVar(&apiserverCAFile, "apiserver-ca-file", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "The API server's CA (PEM), with --apiserver-url or in-cluster.")
	flag.StringVar(&mfaClaim, "mfa-claim", "kubepim.io/amr", "The manager's --mfa-claim: the user-extra key that carries how the user signed in.")
	flag.StringVar(&mfaValues, "mfa-claim-values", "mfa,otp,hwk,swk", "The manager's --mfa-claim-values.")
	flag.StringVar(&namespace, "kubepim-namespace", "kubepim-system", "kubepim's namespace, where the audit trail's anchor is (read as the user, to verify the chain).")
	flag.IntVar(&reviewPageSize, "review-page-size", 50, "AccessReviewItems asked for per list call, and about how many a page of a review shows.")
	flag.IntVar(&assignmentPageSize, "assignment-page-size", 100, "RoleAssignments per page of Assignments (the API's limit).")
	flag.IntVar(&approvalPageSize, "approval-page-size", 50, "Requests per page of Approve requests.")
	flag.StringVar(&extraScopes, "extra-scopes", "", "More OAuth scopes to ask for, comma-separated: with --apiserver-token=access-token, the API server's resource (AKS-managed Entra ID: 6dae42f8-4368-4678-94ff-3960e28e3630/.default).")
	flag.StringVar(&apiserverToken, "apiserver-token", "id-token", "The user's token the API server is given: id-token (its audience is --client-id), or access-token (the access token of --extra-scopes, for AKS-managed Entra ID).")
	flag.Parse()
	if apiserverToken != "id-token" && apiserverToken != "access-token" {
		fmt.Fprintln(os.Stderr, "--apiserver-token must be id-token or access-token")
		os.Exit(2)
	}
	var extra []string
	for sc := range strings.SplitSeq(extraScopes, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			extra = append(extra, sc)
		}
	}

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, listen, certFile, keyFile, Options{
		URL: consoleURL, IssuerURL: issuerURL, ClientID: clientID, SessionMaxAge: sessionMaxAge,
		MFAClaim: mfaClaim, MFAClaimValues: strings.Split(mfaValues, ","), Log: log,
		Namespace: namespace, ReviewPageSize: reviewPageSize, AssignmentPageSize: assignmentPageSize, ApprovalPageSize: approvalPageSize,
		ExtraScopes: extra, AccessTokenBearer: apiserverToken == "access-token",
	}, issuerCAFile, clientSecretFile, sessionKeyFile, kubeconfig, apiserverURL, apiserverCAFile); err != nil {
		log.Error("console", "error", err.Error())
		os.Exit(1)
	}
}

func run(log *slog.Logger, listen, certFile, keyFile string, o Options, issuerCAFile, clientSecretFile, sessionKeyFile, kubeconfig, apiserverURL, apiserverCAFile string) error {
	if issuerCAFile != "" {
		pem, err := os.ReadFile(issuerCAFile)
		if err != nil {
			return err
		}
		o.IssuerCA = x509.NewCertPool()
		if !o.IssuerCA.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", issuerCAFile)
		}
	}
	if clientSecretFile != "" {
		secret, err := os.ReadFile(clientSecretFile)
		if err != nil {
			return err
		}
		o.ClientSecret = strings.TrimSpace(string(secret))
	}
	if sessionKeyFile == "" {
		return errors.New("--session-key-file is required")
	}
	raw, err := os.ReadFile(sessionKeyFile)
	if err != nil {
		return err
	}
	o.SessionKeys = parseSessionKeys(raw)
	// Only where the API server is and how to trust it: the console needs
	// no ServiceAccount token (automountServiceAccountToken can be false,
	// with the cluster's CA mounted from the kube-root-ca.crt ConfigMap).
	switch {
	case kubeconfig != "":
		o.Kube, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	case apiserverURL == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "":
		err = errors.New("give --kubeconfig or --apiserver-url, or run in a cluster")
	default:
		if apiserverURL == "" {
			apiserverURL = "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
		}
		o.Kube = &rest.Config{Host: apiserverURL, TLSClientConfig: rest.TLSClientConfig{CAFile: apiserverCAFile}}
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var s *Server
	// The provider may start after the console (make dev, a rollout):
	// discovery is retried.
	for attempt := 0; ; attempt++ {
		if s, err = New(ctx, o); err == nil {
			break
		}
		if attempt >= 30 || ctx.Err() != nil {
			return err
		}
		log.Info("waiting for the OpenID provider", "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	srv := &http.Server{Addr: listen, Handler: s, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("serving", "address", listen, "url", o.URL, "issuer", o.IssuerURL)
	if certFile != "" {
		err = srv.ListenAndServeTLS(certFile, keyFile)
	} else {
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
