package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
)

// equalStatus reports whether two statuses are the same, ignoring nothing:
// condition LastTransitionTimes only move on transitions (meta.SetStatusCondition).
func equalStatus[T any](a, b T) bool {
	return equality.Semantic.DeepEqual(a, b)
}
