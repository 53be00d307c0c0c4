package approval

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, 32)
	otherKey = bytes.Repeat([]byte{0x43}, 32)
	reqUID   = types.UID("6f1c2a9e-0000-4000-8000-000000000001")
	decided  = time.Date(2026, 3, 10, 9, 15, 0, 0, time.UTC)
)

func testRecord() pimv1.ApprovalRecord {
	return pimv1.ApprovalRecord{
		Approver: pimv1.UserInfo{Username: "carol", UID: "u-carol", Groups: []string{"sre"}},
		Decision: pimv1.DecisionApprove,
		Reason:   "incident 42 is real",
		Time:     metav1.NewTime(decided),
	}
}

func TestSignIsDeterministic(t *testing.T) {
	a, b := Sign(testKey, reqUID, testRecord()), Sign(testKey, reqUID, testRecord())
	if a != b {
		t.Fatalf("Sign differs for the same input: %s, %s", a, b)
	}
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Fatalf("signature %q is not base64 of an HMAC-SHA256 (%d bytes, %v)", a, len(raw), err)
	}
	if Sign(otherKey, reqUID, testRecord()) == a {
		t.Fatal("two keys give the same signature")
	}
}

func TestVerify(t *testing.T) {
	good := Sign(testKey, reqUID, testRecord())
	cases := []struct {
		name   string
		key    []byte
		uid    types.UID
		mutate func(*SignedRecord)
		want   bool
	}{
		{"valid", testKey, reqUID, func(*SignedRecord) {}, true},
		{"wrong key", otherKey, reqUID, func(*SignedRecord) {}, false},
		{"another request", testKey, types.UID("6f1c2a9e-0000-4000-8000-000000000002"), func(*SignedRecord) {}, false},
		{"no request uid", testKey, "", func(*SignedRecord) {}, false},
		{"reason changed", testKey, reqUID, func(s *SignedRecord) { s.Record.Reason = "incident 43 is real" }, false},
		{"decision changed", testKey, reqUID, func(s *SignedRecord) { s.Record.Decision = pimv1.DecisionDeny }, false},
		{"approver changed", testKey, reqUID, func(s *SignedRecord) { s.Record.Approver.Username = "dave" }, false},
		{"approver groups changed", testKey, reqUID, func(s *SignedRecord) { s.Record.Approver.Groups = []string{"sre", "admins"} }, false},
		{"time changed", testKey, reqUID, func(s *SignedRecord) { s.Record.Time = metav1.NewTime(decided.Add(time.Hour)) }, false},
		{"malformed base64", testKey, reqUID, func(s *SignedRecord) { s.Signature = "not base64!!" }, false},
		{"empty signature", testKey, reqUID, func(s *SignedRecord) { s.Signature = "" }, false},
		{"truncated signature", testKey, reqUID, func(s *SignedRecord) {
			raw, _ := base64.StdEncoding.DecodeString(s.Signature)
			s.Signature = base64.StdEncoding.EncodeToString(raw[:16])
		}, false},
		{"one bit flipped", testKey, reqUID, func(s *SignedRecord) {
			raw, _ := base64.StdEncoding.DecodeString(s.Signature)
			raw[0] ^= 1
			s.Signature = base64.StdEncoding.EncodeToString(raw)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := SignedRecord{Record: testRecord(), Signature: good}
			tc.mutate(&s)
			if got := Verify(tc.key, tc.uid, s); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func withDecisions(value string, present bool) *pimv1.ActivationRequest {
	ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "req-1", UID: reqUID}}
	if present {
		ar.Annotations = map[string]string{pimv1.AnnotationDecisions: value, "other": "x"}
	}
	return ar
}

func TestParseEncodeRoundTrip(t *testing.T) {
	deny := testRecord()
	deny.Approver = pimv1.UserInfo{Username: "dave", Groups: []string{"sre", "oncall"}, Extra: map[string][]string{"scopes": {"a", "b"}}}
	deny.Decision = pimv1.DecisionDeny
	deny.Reason = `not "now", sorry`
	records := []SignedRecord{
		{Record: testRecord(), Signature: Sign(testKey, reqUID, testRecord())},
		{Record: deny, Signature: Sign(testKey, reqUID, deny)},
	}

	parsed, err := Parse(withDecisions(Encode(records), true))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(parsed) != len(records) {
		t.Fatalf("Parse returned %d records, want %d", len(parsed), len(records))
	}
	for i, p := range parsed {
		w := records[i]
		if p.Signature != w.Signature || p.Record.Decision != w.Record.Decision || p.Record.Reason != w.Record.Reason ||
			p.Record.Approver.Username != w.Record.Approver.Username || p.Record.Approver.UID != w.Record.Approver.UID ||
			strings.Join(p.Record.Approver.Groups, ",") != strings.Join(w.Record.Approver.Groups, ",") ||
			!p.Record.Time.Equal(&w.Record.Time) {
			t.Errorf("record %d = %+v, want %+v", i, p, w)
		}
		// What matters most: a parsed record still verifies.
		if !Verify(testKey, reqUID, p) {
			t.Errorf("record %d no longer verifies after a round trip", i)
		}
	}
	if got := parsed[1].Record.Approver.Extra["scopes"]; strings.Join(got, ",") != "a,b" {
		t.Errorf("extra = %v", got)
	}
	if again := Encode(parsed); again != Encode(records) {
		t.Errorf("Encode(Parse(x)) = %s, want %s", again, Encode(records))
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		value   string
		present bool
		wantN   int
		wantErr bool
	}{
		{name: "no annotation", present: false},
		{name: "empty annotation", value: "", present: true},
		{name: "empty list", value: "[]", present: true},
		{name: "one record", value: `[{"record":{"approver":{"username":"carol"},"decision":"Approve","time":"2026-03-10T09:15:00Z"},"signature":"c2ln"}]`, present: true, wantN: 1},
		{name: "not JSON", value: "{not json", present: true, wantErr: true},
		{name: "an object, not a list", value: `{"record":{},"signature":"x"}`, present: true, wantErr: true},
		{name: "a list of strings", value: `["approve"]`, present: true, wantErr: true},
		{name: "a malformed time", value: `[{"record":{"approver":{"username":"carol"},"time":"yesterday"},"signature":"x"}]`, present: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(withDecisions(tc.value, tc.present))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Parse = %+v, want an error", got)
				}
				if !strings.Contains(err.Error(), pimv1.AnnotationDecisions) {
					t.Errorf("error %q does not name the annotation", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) != tc.wantN {
				t.Fatalf("Parse returned %d records, want %d", len(got), tc.wantN)
			}
		})
	}
}

func TestEncodeEmpty(t *testing.T) {
	if got := Encode([]SignedRecord{}); got != "[]" {
		t.Fatalf("Encode(empty) = %q, want []", got)
	}
	got, err := Parse(withDecisions(Encode(nil), true))
	if err != nil || len(got) != 0 {
		t.Fatalf("Parse(Encode(nil)) = (%v, %v), want no records", got, err)
	}
}
