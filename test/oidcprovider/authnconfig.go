package oidcprovider

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// AuthenticationConfig fills in kube-apiserver's structured authentication
// configuration (config/console/authentication-config.yaml, given as
// template): the issuer, the audience (clientID) and the issuer's CA
// (PEM), keeping every claim mapping and rule as documented. The test
// control planes and `make dev` run kube-apiserver with it.
func AuthenticationConfig(template []byte, issuer, clientID string, caPEM []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(template, &doc); err != nil {
		return nil, err
	}
	jwt, ok := doc["jwt"].([]any)
	if !ok || len(jwt) != 1 {
		return nil, fmt.Errorf("authentication-config.yaml: want one jwt authenticator")
	}
	auth, ok := jwt[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("authentication-config.yaml: the jwt authenticator is not a map")
	}
	iss, ok := auth["issuer"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("authentication-config.yaml: the jwt authenticator has no issuer")
	}
	iss["url"] = issuer
	iss["audiences"] = []string{clientID}
	iss["certificateAuthority"] = string(caPEM)
	return yaml.Marshal(doc)
}
