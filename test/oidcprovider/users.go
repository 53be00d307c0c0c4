package oidcprovider

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
)

// User is someone who can sign in at the provider.
type User struct {
	// Username is the subject and the preferred_username claim.
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups,omitempty"`
	// TOTPSecret (base32) is the user's second factor: when set, signing
	// in needs a current one-time code as well, and the tokens carry
	// amr ["pwd", "otp"]; without it, amr ["pwd"].
	TOTPSecret string `json:"totpSecret,omitempty"`
}

// Code returns the user's one-time code at t.
func (u User) Code(t time.Time) (string, error) {
	return totp.GenerateCode(u.TOTPSecret, t)
}

// SampleUsers are the people of kubepim's samples and walkthrough, each
// with a fresh random password; alice and carol also have a TOTP second
// factor.
//
//	alice    developers                      password + TOTP
//	bob      sre                             password
//	carol    platform-leads                  password + TOTP
//	dave     sre, sre-leads                  password
//	mallory  (no group)                      password
//	auditor  auditors                        password
//	erin     sre and 150 more (object IDs)    password
//
// erin is in as many groups as an Entra ID user of a large organisation
// (groups named by object ID, as Entra ID names them): her ID token is
// over 4 KB, larger than one cookie holds.
func SampleUsers() []User {
	users := []User{
		{Username: "alice", Groups: []string{"developers"}, TOTPSecret: randomSecret()},
		{Username: "bob", Groups: []string{"sre"}},
		{Username: "carol", Groups: []string{"platform-leads"}, TOTPSecret: randomSecret()},
		{Username: "dave", Groups: []string{"sre", "sre-leads"}},
		{Username: "mallory"},
		{Username: "auditor", Groups: []string{"auditors"}},
		{Username: "erin", Groups: append([]string{"sre"}, ManyGroups(150)...)},
	}
	for i := range users {
		users[i].Password = randomPassword()
		users[i].Email = users[i].Username + "@example.com"
	}
	return users
}

// ManyGroups returns n group names shaped like Entra ID object IDs.
func ManyGroups(n int) []string {
	groups := make([]string, n)
	for i := range groups {
		groups[i] = fmt.Sprintf("%08x-7c1e-4d2a-9b3f-%012x", 0x5eed0000+i, 0xa11ce0000+i)
	}
	return groups
}

func randomSecret() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

func randomPassword() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
