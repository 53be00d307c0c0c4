// Package approval signs and verifies the approval records kubepim's
// webhook writes on ActivationRequests. An approver decides with an
// annotation; the webhook, which knows who the approver is from the API
// server's authentication, replaces it with a record signed with HMAC-SHA256
// under a key only the manager holds. The controller counts only records
// whose signature verifies, so a record written around the webhook (while
// it was down, or straight into storage) counts for nothing.
package approval

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// KeySecretName is the Secret, in kubepim's namespace, that holds the
// signing key. The manager creates it on first use.
const KeySecretName = "kubepim-approval-signing-key"

// SignedRecord is one entry of the decisions annotation.
type SignedRecord struct {
	Record    pimv1.ApprovalRecord `json:"record"`
	Signature string               `json:"signature"`
}

// Keys loads (creating if need be) and caches the signing key.
type Keys struct {
	Client    client.Client
	Namespace string

	mu  sync.Mutex
	key []byte
}

// Key returns the signing key.
func (k *Keys) Key(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	s := &corev1.Secret{}
	err := k.Client.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: KeySecretName}, s)
	if apierrors.IsNotFound(err) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: KeySecretName,
				Labels: map[string]string{pimv1.LabelManagedBy: pimv1.ManagedByValue}},
			Data: map[string][]byte{"key": key},
		}
		err = k.Client.Create(ctx, s)
		if apierrors.IsAlreadyExists(err) {
			// Another replica won the race: use its key.
			err = k.Client.Get(ctx, client.ObjectKeyFromObject(s), s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the approval signing key %s/%s: %w", k.Namespace, KeySecretName, err)
	}
	if len(s.Data["key"]) < 32 {
		return nil, fmt.Errorf("the approval signing key %s/%s is too short", k.Namespace, KeySecretName)
	}
	k.key = s.Data["key"]
	return k.key, nil
}

// Sign returns the signature of a record for the request with uid.
func Sign(key []byte, requestUID types.UID, r pimv1.ApprovalRecord) string {
	body, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(requestUID))
	mac.Write([]byte{0})
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify reports whether a signed record was signed for the request.
func Verify(key []byte, requestUID types.UID, s SignedRecord) bool {
	want, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return false
	}
	got, _ := base64.StdEncoding.DecodeString(Sign(key, requestUID, s.Record))
	return hmac.Equal(want, got)
}

// Parse reads the decisions annotation of a request.
func Parse(ar *pimv1.ActivationRequest) ([]SignedRecord, error) {
	raw, ok := ar.Annotations[pimv1.AnnotationDecisions]
	if !ok || raw == "" {
		return nil, nil
	}
	var records []SignedRecord
	if err := json.Unmarshal([]byte(raw), &records); err != nil {
		return nil, errors.New("annotation " + pimv1.AnnotationDecisions + " is not a list of signed records")
	}
	return records, nil
}

// Encode writes records as the decisions annotation's value.
func Encode(records []SignedRecord) string {
	b, err := json.Marshal(records)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Bounds of the decisions annotation. A request is decided by at most
// requiredApprovals (≤10) approvals or by one denial, and each approver
// decides once, so the records of a request stay at ten or eleven; only a
// policy changed while a request waits (approvers removed, whose records
// then count for nothing) lets more in. The bounds keep even that inside
// what the API server stores.
const (
	// MaxRecords is how many records a request keeps: the controller
	// mirrors them in status.approvals, which holds at most 64.
	MaxRecords = 64
	// MaxAnnotationBytes bounds the annotation itself. All of an object's
	// annotations must fit in 256 KiB; users' own are capped at 32 KiB
	// (the ActivationRequest validating webhook), which leaves this much
	// for the records with room to spare. A record keeps the approver's
	// name and uid, the reason (≤1 KiB) and only the groups through which
	// they could decide, not all of theirs: about 300 bytes plus those
	// groups, so 64 records of approvers deciding through a few groups
	// each fit many times over.
	MaxAnnotationBytes = 160 << 10
)

// CheckRoom says why records cannot all be kept on a request, or nil.
func CheckRoom(records []SignedRecord) error {
	if len(records) > MaxRecords {
		return fmt.Errorf("this request already holds %d approval records, the most one request keeps; no further decision can be recorded on it: "+
			"it ends when its approval times out, and the requester can ask again", MaxRecords)
	}
	if n := len(Encode(records)); n > MaxAnnotationBytes {
		return fmt.Errorf("this decision would make the approval records %d bytes long, more than the %d one request keeps; "+
			"give a shorter reason, or let the request time out and ask again", n, MaxAnnotationBytes)
	}
	return nil
}
