package approval

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// ReviewRecord is one reviewer's decision on one item of an AccessReview
// instance, as kubepim's webhook saw it. It is signed for the
// AccessReviewItem's UID (before 0.4: the AccessReview's), so it cannot be
// moved to another item.
type ReviewRecord struct {
	// Seq orders the decisions on one review: each is numbered one past
	// every number the review has seen (in its records and in
	// status.decisionsRecorded), by the webhook that signs it.
	Seq      int64          `json:"seq,omitempty"`
	Instance int32          `json:"instance"`
	Item     string         `json:"item"`
	Reviewer pimv1.UserInfo `json:"reviewer"`
	// Via is how the reviewer was entitled to decide (policy.ReviewerVia).
	Via      string               `json:"via,omitempty"`
	Decision pimv1.ReviewDecision `json:"decision"`
	Reason   string               `json:"reason,omitempty"`
	Time     metav1.Time          `json:"time"`
}

// SignedReviewRecord is one entry of the review decisions annotation.
type SignedReviewRecord struct {
	Record    ReviewRecord `json:"record"`
	Signature string       `json:"signature"`
}

// SignReview signs a review record for the object with uid: the
// AccessReviewItem (before 0.4, the AccessReview).
func SignReview(key []byte, reviewUID types.UID, r ReviewRecord) string {
	body, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("review\x00" + string(reviewUID) + "\x00"))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyReview reports whether a signed review record was signed by kubepim
// for the AccessReview with uid.
func VerifyReview(key []byte, reviewUID types.UID, s SignedReviewRecord) bool {
	want, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return false
	}
	got, _ := base64.StdEncoding.DecodeString(SignReview(key, reviewUID, s.Record))
	return hmac.Equal(want, got)
}

// ParseReview reads the review decisions annotation.
func ParseReview(raw string) ([]SignedReviewRecord, error) {
	if raw == "" {
		return nil, nil
	}
	var records []SignedReviewRecord
	if err := json.Unmarshal([]byte(raw), &records); err != nil {
		return nil, errors.New("annotation " + pimv1.AnnotationReviewDecisions + " is not a list of signed records")
	}
	return records, nil
}

// EncodeReview writes the review decisions annotation's value.
func EncodeReview(records []SignedReviewRecord) string {
	b, err := json.Marshal(records)
	if err != nil {
		panic(err)
	}
	return string(b)
}
