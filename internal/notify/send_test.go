package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/test/notifysink"
)

// TestDeliverFailuresNeverShowTheSecretURL posts to real servers that
// fail in the ways that leaked the URL before: Go's url.Error (password
// masked as ***, path and query in clear), a trailing newline (quoted in
// the parse error), and a receiver that echoes the request line.
func TestDeliverFailuresNeverShowTheSecretURL(t *testing.T) {
	const token, password = "86da1f0c9e7b", "pw-x9"
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.Close()
	}))
	defer drop.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no route for "+r.URL.RequestURI(), http.StatusNotFound)
	}))
	defer echo.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	host := func(u string) string { return strings.TrimPrefix(u, "http://") }

	tests := []struct {
		name, url string
		want      []string
		permanent bool
	}{
		{name: "userinfo, server hangs up",
			url:  "http://pim:" + password + "@" + host(drop.URL) + "/broken/" + token + "?key=" + token,
			want: []string{"POST to " + host(drop.URL) + " failed: connection closed by the server"}},
		{name: "userinfo, connection refused",
			url:  "http://pim:" + password + "@" + closed + "/broken/" + token + "?key=" + token,
			want: []string{"POST to " + closed + " failed: connection refused"}},
		{name: "trailing newline is trimmed; the echoed path is withheld",
			url:       echo.URL + "/nl/" + token + "\n",
			want:      []string{"webhook at " + host(echo.URL) + " answered 404 Not Found: (the answer repeats part of the URL; not shown)"},
			permanent: true},
		{name: "invalid URL",
			url:  "http//pim:" + password + "@hooks.example.com/" + token,
			want: []string{`webhook URL in secret "chan": invalid URL: the scheme must be http or https`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := Target{
				Channel: &pimv1.NotificationChannel{ObjectMeta: metav1.ObjectMeta{Name: "chan"},
					Spec: pimv1.NotificationChannelSpec{Type: pimv1.ChannelWebhook, SecretRef: &pimv1.ChannelSecretReference{Name: "chan"}}},
				Secret: map[string][]byte{SecretKeyURL: []byte(tt.url)},
			}
			res := Deliver(context.Background(), target, approvalNeeded(), t0)
			if res.Err == nil {
				t.Fatal("delivered")
			}
			msg := res.Err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			for _, secret := range []string{token, password, "/broken", "/nl", "key="} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains %q", msg, secret)
				}
			}
			if res.Permanent != tt.permanent {
				t.Errorf("permanent = %v, want %v", res.Permanent, tt.permanent)
			}
		})
	}
}

// TestSMTPCredentialsAreTrimmed: a Secret written with
// `kubectl create secret --from-file` ends its values in a newline; the
// server wants them without.
func TestSMTPCredentialsAreTrimmed(t *testing.T) {
	sink, err := notifysink.NewSMTP("127.0.0.1:0", true, "kubepim", "mail-password")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Close() }()
	_, port, _ := net.SplitHostPort(sink.Addr)
	p, _ := strconv.Atoi(port)
	n := approvalNeeded()
	n.Spec.To = []string{"carol@example.com"}
	target := Target{
		Channel: &pimv1.NotificationChannel{Spec: pimv1.NotificationChannelSpec{Type: pimv1.ChannelSMTP, CABundle: sink.CertPEM,
			SMTP: &pimv1.SMTPSettings{Host: "127.0.0.1", Port: int32(p), Security: pimv1.SMTPStartTLS, From: "pim@example.com"}}},
		Secret: map[string][]byte{SecretKeyUsername: []byte("kubepim\n"), SecretKeyPassword: []byte(" mail-password\n")},
	}
	if res := Deliver(context.Background(), target, n, t0); res.Err != nil {
		t.Fatalf("delivery: %v", res.Err)
	}
	if len(sink.Mails("carol@example.com")) != 1 {
		t.Fatal("no mail arrived")
	}
}

func TestSMTPAuthReplyThatEchoesTheCredentialsIsWithheld(t *testing.T) {
	for _, tt := range []struct {
		err       error
		want      string
		permanent bool
	}{
		{&smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad password hunter2x for kubepim"},
			"authentication: SMTP error 535: (the reply repeats the credentials; not shown)", true},
		{&smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "try later"},
			"authentication: SMTP error 454: try later", false},
		{errors.New("sasl: hunter2x rejected"), "authentication failed", false},
	} {
		err := authError(tt.err, "kubepim", "hunter2x")
		if err.Error() != tt.want || isPermanentSMTP(err) != tt.permanent {
			t.Errorf("authError(%v) = %q (permanent %v), want %q (%v)", tt.err, err, isPermanentSMTP(err), tt.want, tt.permanent)
		}
	}
}
