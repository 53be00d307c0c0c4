package approval

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// GrantTiming is the window kubepim stamped on the binding it granted an
// activation with: so that a manager that dies after creating the binding
// and before storing the request's status finds the deadline it promised.
type GrantTiming struct {
	// OwnerUID is the ActivationRequest's UID.
	OwnerUID types.UID
	// Binding is "<kind>/<namespace>/<name>" of the binding that carries it:
	// a signature copied onto another binding does not verify there.
	Binding    string
	Start, End time.Time
}

func (t GrantTiming) message() []byte {
	return []byte(strings.Join([]string{"grant-timing", string(t.OwnerUID), t.Binding,
		t.Start.UTC().Format(time.RFC3339), t.End.UTC().Format(time.RFC3339)}, "\x00"))
}

// SignTiming returns the signature of a grant's timing.
func SignTiming(key []byte, t GrantTiming) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(t.message())
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyTiming reports whether signature is kubepim's for exactly t.
func VerifyTiming(key []byte, t GrantTiming, signature string) bool {
	want, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return false
	}
	got, _ := base64.StdEncoding.DecodeString(SignTiming(key, t))
	return hmac.Equal(want, got)
}
