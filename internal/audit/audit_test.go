package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var auditT0 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

// fullSpec is an event with every field set; each call returns a fresh copy.
func fullSpec() pimv1.AuditEventSpec {
	return pimv1.AuditEventSpec{
		Time:          metav1.NewTime(auditT0),
		Action:        pimv1.AuditApproved,
		Actor:         &pimv1.UserInfo{Username: "carol", UID: "u-carol", Groups: []string{"sre", "system:authenticated"}},
		Subject:       &pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"},
		RoleRef:       &pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"},
		Namespace:     "prod",
		Target:        &pimv1.AuditObjectReference{Kind: "ActivationRequest", Name: "req-1", UID: "uid-1"},
		Justification: "incident 42",
		Ticket:        &pimv1.Ticket{System: "JIRA", Number: "OPS-1"},
		Outcome:       pimv1.AuditOutcomeSuccess,
		Reason:        "looks fine",
		Details:       map[string]string{"approvals": "1", "required": "1"},
		Sequence:      7,
		PreviousHash:  strings.Repeat("ab", 32),
	}
}

func TestHashDeterministic(t *testing.T) {
	a, b := Hash(fullSpec()), Hash(fullSpec())
	if a != b {
		t.Fatalf("Hash differs for equal events: %s, %s", a, b)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(a) {
		t.Fatalf("Hash = %q, want 64 lowercase hex digits", a)
	}
	// The documented formula: sha256(previousHash + "\n" + JSON without hash).
	s := fullSpec()
	body, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte(s.PreviousHash+"\n"), body...))
	if want := hex.EncodeToString(sum[:]); a != want {
		t.Fatalf("Hash = %s, want %s", a, want)
	}
}

func TestHashIgnoresItsOwnField(t *testing.T) {
	s := fullSpec()
	want := Hash(s)
	s.Hash = "something else"
	if got := Hash(s); got != want {
		t.Fatalf("Hash depends on the Hash field: %s != %s", got, want)
	}
}

func TestHashChangesWithEveryField(t *testing.T) {
	base := Hash(fullSpec())
	cases := []struct {
		name   string
		mutate func(*pimv1.AuditEventSpec)
	}{
		{"time", func(s *pimv1.AuditEventSpec) { s.Time = metav1.NewTime(auditT0.Add(time.Second)) }},
		{"action", func(s *pimv1.AuditEventSpec) { s.Action = pimv1.AuditDenied }},
		{"actor", func(s *pimv1.AuditEventSpec) { s.Actor.Username = "dave" }},
		{"actor uid", func(s *pimv1.AuditEventSpec) { s.Actor.UID = "u-other" }},
		{"actor groups", func(s *pimv1.AuditEventSpec) { s.Actor.Groups = []string{"sre"} }},
		{"no actor", func(s *pimv1.AuditEventSpec) { s.Actor = nil }},
		{"subject kind", func(s *pimv1.AuditEventSpec) { s.Subject.Kind = pimv1.SubjectKindGroup }},
		{"subject name", func(s *pimv1.AuditEventSpec) { s.Subject.Name = "bob" }},
		{"role", func(s *pimv1.AuditEventSpec) { s.RoleRef.Name = "edit" }},
		{"namespace", func(s *pimv1.AuditEventSpec) { s.Namespace = "staging" }},
		{"target name", func(s *pimv1.AuditEventSpec) { s.Target.Name = "req-2" }},
		{"target uid", func(s *pimv1.AuditEventSpec) { s.Target.UID = "uid-2" }},
		{"justification", func(s *pimv1.AuditEventSpec) { s.Justification = "incident 43" }},
		{"ticket", func(s *pimv1.AuditEventSpec) { s.Ticket.Number = "OPS-2" }},
		{"outcome", func(s *pimv1.AuditEventSpec) { s.Outcome = pimv1.AuditOutcomeFailure }},
		{"reason", func(s *pimv1.AuditEventSpec) { s.Reason = "looks wrong" }},
		{"details value", func(s *pimv1.AuditEventSpec) { s.Details["approvals"] = "2" }},
		{"details key added", func(s *pimv1.AuditEventSpec) { s.Details["extra"] = "" }},
		{"details removed", func(s *pimv1.AuditEventSpec) { s.Details = nil }},
		{"sequence", func(s *pimv1.AuditEventSpec) { s.Sequence = 8 }},
		{"previous hash", func(s *pimv1.AuditEventSpec) { s.PreviousHash = strings.Repeat("cd", 32) }},
		{"previous hash emptied", func(s *pimv1.AuditEventSpec) { s.PreviousHash = "" }},
	}
	seen := map[string]string{base: "base"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fullSpec()
			tc.mutate(&s)
			got := Hash(s)
			if got == base {
				t.Fatalf("changing the %s left the hash as it was", tc.name)
			}
			if other, ok := seen[got]; ok {
				t.Fatalf("changing the %s gave the same hash as %s", tc.name, other)
			}
			seen[got] = tc.name
		})
	}
}

func TestName(t *testing.T) {
	target := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "req-1", UID: types.UID("uid-1")}}
	entry := func(mods ...func(*Entry)) Entry {
		e := Entry{Action: pimv1.AuditApproved, Target: target, Discriminator: "carol", Reason: "ok"}
		for _, m := range mods {
			m(&e)
		}
		return e
	}
	base := Name(entry())
	if !regexp.MustCompile(`^approved-[0-9a-f]{24}$`).MatchString(base) {
		t.Fatalf("Name = %q, want approved-<24 hex digits>", base)
	}
	if again := Name(entry()); again != base {
		t.Fatalf("Name is not deterministic: %s, %s", base, again)
	}

	same := []struct {
		name string
		mod  func(*Entry)
	}{
		{"another reason", func(e *Entry) { e.Reason = "different" }},
		{"another actor", func(e *Entry) { e.Actor = &pimv1.UserInfo{Username: "dave"} }},
		{"another target name, same uid", func(e *Entry) {
			e.Target = &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "renamed", UID: types.UID("uid-1")}}
		}},
	}
	for _, tc := range same {
		t.Run("same with "+tc.name, func(t *testing.T) {
			if got := Name(entry(tc.mod)); got != base {
				t.Fatalf("Name = %s, want %s", got, base)
			}
		})
	}

	differ := []struct {
		name string
		mod  func(*Entry)
	}{
		{"action", func(e *Entry) { e.Action = pimv1.AuditDenied }},
		{"discriminator", func(e *Entry) { e.Discriminator = "dave" }},
		{"no discriminator", func(e *Entry) { e.Discriminator = "" }},
		{"uid", func(e *Entry) {
			e.Target = &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "req-1", UID: types.UID("uid-2")}}
		}},
		{"no target", func(e *Entry) { e.Target = nil }},
	}
	seen := map[string]string{base: "base"}
	for _, tc := range differ {
		t.Run("differs by "+tc.name, func(t *testing.T) {
			got := Name(entry(tc.mod))
			if got == base {
				t.Fatalf("Name did not change with the %s", tc.name)
			}
			if other, ok := seen[got]; ok {
				t.Fatalf("Name with the %s equals Name with the %s", tc.name, other)
			}
			seen[got] = tc.name
		})
	}
	if got := Name(entry(func(e *Entry) { e.Action = pimv1.AuditDenied })); !strings.HasPrefix(got, "denied-") {
		t.Errorf("Name = %q, want the lowercased action as prefix", got)
	}
}

func TestFilterMatches(t *testing.T) {
	ev := &pimv1.AuditEvent{Spec: fullSpec()} // at auditT0, Approved, actor carol, subject alice, ClusterRole admin
	bare := &pimv1.AuditEvent{Spec: pimv1.AuditEventSpec{Time: metav1.NewTime(auditT0), Action: pimv1.AuditExpired}}
	cases := []struct {
		name string
		f    Filter
		ev   *pimv1.AuditEvent
		want bool
	}{
		{"empty filter", Filter{}, ev, true},
		{"empty filter, bare event", Filter{}, bare, true},
		{"since before", Filter{Since: auditT0.Add(-time.Second)}, ev, true},
		{"since equal is inclusive", Filter{Since: auditT0}, ev, true},
		{"since after", Filter{Since: auditT0.Add(time.Second)}, ev, false},
		{"until after", Filter{Until: auditT0.Add(time.Second)}, ev, true},
		{"until equal is exclusive", Filter{Until: auditT0}, ev, false},
		{"until before", Filter{Until: auditT0.Add(-time.Second)}, ev, false},
		{"since and until around", Filter{Since: auditT0.Add(-time.Hour), Until: auditT0.Add(time.Hour)}, ev, true},
		{"role matches", Filter{Role: "admin"}, ev, true},
		{"role differs", Filter{Role: "edit"}, ev, false},
		{"role on an event without one", Filter{Role: "admin"}, bare, false},
		{"user is the actor", Filter{User: "carol"}, ev, true},
		{"user is the subject", Filter{User: "alice"}, ev, true},
		{"user is neither", Filter{User: "bob"}, ev, false},
		{"user on an event with neither", Filter{User: "kubepim:controller"}, bare, false},
		{"action exact", Filter{Action: "Approved"}, ev, true},
		{"action lower case", Filter{Action: "approved"}, ev, true},
		{"action upper case", Filter{Action: "APPROVED"}, ev, true},
		{"action differs", Filter{Action: "Denied"}, ev, false},
		{"action prefix is not enough", Filter{Action: "Approve"}, ev, false},
		{"all match", Filter{Since: auditT0, Until: auditT0.Add(time.Second), Role: "admin", User: "alice", Action: "approved"}, ev, true},
		{"all but the user match", Filter{Since: auditT0, Until: auditT0.Add(time.Second), Role: "admin", User: "bob", Action: "approved"}, ev, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Matches(tc.ev); got != tc.want {
				t.Fatalf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCSVRow(t *testing.T) {
	s := fullSpec()
	s.Hash = Hash(s)
	row := CSVRow(&pimv1.AuditEvent{Spec: s})
	if len(row) != len(CSVHeader) {
		t.Fatalf("row has %d fields, header %d", len(row), len(CSVHeader))
	}
	got := map[string]string{}
	for i, h := range CSVHeader {
		got[h] = row[i]
	}
	want := map[string]string{
		"sequence": "7", "time": "2026-03-10T09:00:00Z", "action": "Approved", "outcome": "Success",
		"actor": "carol", "actorGroups": "sre;system:authenticated", "subjectKind": "User", "subject": "alice",
		"roleKind": "ClusterRole", "role": "admin", "namespace": "prod", "targetKind": "ActivationRequest",
		"target": "req-1", "targetUID": "uid-1", "justification": "incident 42", "ticket": "JIRA:OPS-1",
		"reason": "looks fine", "details": `{"approvals":"1","required":"1"}`, "hash": s.Hash,
	}
	if len(got) != len(want) {
		t.Fatalf("header names = %v", CSVHeader)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	bare := CSVRow(&pimv1.AuditEvent{Spec: pimv1.AuditEventSpec{Time: metav1.NewTime(auditT0), Action: pimv1.AuditExpired, Sequence: 1}})
	if len(bare) != len(CSVHeader) {
		t.Fatalf("bare row has %d fields, header %d", len(bare), len(CSVHeader))
	}
	wantBare := []string{"1", "2026-03-10T09:00:00Z", "Expired", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""}
	for i := range wantBare {
		if bare[i] != wantBare[i] {
			t.Errorf("bare %s = %q, want %q", CSVHeader[i], bare[i], wantBare[i])
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	awkward := fullSpec()
	awkward.Justification = "line one,\nline \"two\"\r\nthree"
	awkward.Reason = `she said "no", then "yes"`
	awkward.Actor.Groups = []string{"a,b", `q"uote`}
	awkward.Details = map[string]string{"note": "x,\"y\"\nz"}
	awkward.Subject.Name = " leading and trailing "
	local := fullSpec()
	local.Time = metav1.NewTime(time.Date(2026, 3, 10, 10, 0, 0, 0, time.FixedZone("CET", 3600)))

	rows := [][]string{
		CSVHeader,
		CSVRow(&pimv1.AuditEvent{Spec: fullSpec()}),
		CSVRow(&pimv1.AuditEvent{Spec: awkward}),
		CSVRow(&pimv1.AuditEvent{Spec: local}),
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	read, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("reading the CSV back: %v", err)
	}
	if len(read) != len(rows) {
		t.Fatalf("read %d rows, wrote %d", len(read), len(rows))
	}
	for i := range rows {
		if len(read[i]) != len(rows[i]) {
			t.Fatalf("row %d: read %d fields, wrote %d", i, len(read[i]), len(rows[i]))
		}
		for j := range rows[i] {
			// encoding/csv turns \r\n inside a quoted field into \n.
			if want := strings.ReplaceAll(rows[i][j], "\r\n", "\n"); read[i][j] != want {
				t.Errorf("row %d field %s = %q, want %q", i, CSVHeader[j], read[i][j], want)
			}
		}
	}
	if got := read[2][14]; got != "line one,\nline \"two\"\nthree" {
		t.Errorf("justification = %q", got)
	}
	if got := read[2][5]; got != "a,b;q\"uote" {
		t.Errorf("actorGroups = %q", got)
	}
	if got := read[3][1]; got != "2026-03-10T09:00:00Z" {
		t.Errorf("time = %q, want it in UTC", got)
	}
}

func TestFilterUserMatchesServiceAccountsButNotGroups(t *testing.T) {
	ev := func(s pimv1.Subject) *pimv1.AuditEvent {
		return &pimv1.AuditEvent{Spec: pimv1.AuditEventSpec{Actor: &pimv1.UserInfo{Username: "kubepim:controller"}, Subject: &s}}
	}
	sa := ev(pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Namespace: "ci", Name: "deployer"})
	if !(Filter{User: "system:serviceaccount:ci:deployer"}).Matches(sa) {
		t.Error("the ServiceAccount's user name should match its subject")
	}
	if (Filter{User: "deployer"}).Matches(sa) {
		t.Error("a bare ServiceAccount name is not a user name")
	}
	if (Filter{User: "sre"}).Matches(ev(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "sre"})) {
		t.Error("a group is not a user")
	}
}

// chainOf makes n linked events from sequence first, the first linking to
// previous.
func chainOf(first int64, n int, previous string) []*pimv1.AuditEvent {
	var out []*pimv1.AuditEvent
	for i := range n {
		s := fullSpec()
		s.Sequence, s.PreviousHash = first+int64(i), previous
		s.Hash = Hash(s)
		previous = s.Hash
		out = append(out, &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: "ev-" + strings.Repeat("x", i)}, Spec: s})
	}
	return out
}

func TestChainFromAnchorAndFromOldest(t *testing.T) {
	pruned := chainOf(1, 3, "")
	events := chainOf(4, 5, pruned[2].Spec.Hash)
	report := func(c *Chain, evs []*pimv1.AuditEvent) Report {
		for i := len(evs) - 1; i >= 0; i-- { // any order
			c.Add(evs[i])
		}
		return c.Report()
	}
	anchor := Anchor{Sequence: 3, Hash: pruned[2].Spec.Hash}
	if r := report(NewChain(anchor), append(slices.Clone(pruned[1:]), events...)); !r.OK() || r.Events != 5 || r.First != 4 || r.Last != 8 || r.FromOldest {
		t.Fatalf("from the anchor: %+v", r)
	}
	if r := report(NewChainFromOldest(), events); !r.OK() || r.Events != 5 || r.First != 4 || !r.FromOldest || !strings.Contains(r.String(), "anchor was not read") {
		t.Fatalf("from the oldest: %+v %s", r, r)
	}
	// Removing the oldest retained event is found from the anchor, not
	// from the oldest (it looks like pruning); one in the middle is found
	// by both; so is an edit.
	if r := report(NewChain(anchor), events[1:]); r.OK() {
		t.Fatal("the anchor did not find the oldest event removed")
	}
	if r := report(NewChainFromOldest(), events[1:]); !r.OK() {
		t.Fatalf("from the oldest: %s", r)
	}
	gap := append(slices.Clone(events[:2]), events[3:]...)
	if r := report(NewChainFromOldest(), gap); r.OK() || !strings.Contains(r.Problem, "events 6 to 6 are missing") {
		t.Fatalf("a removed event: %s", r)
	}
	edited := slices.Clone(events)
	e := *edited[2]
	e.Spec.Reason = "changed"
	edited[2] = &e
	if r := report(NewChainFromOldest(), edited); r.OK() || !strings.Contains(r.Problem, "was edited") {
		t.Fatalf("an edit: %s", r)
	}
}
