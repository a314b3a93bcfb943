// Package deploy holds zerohop's Kubernetes manifests and Dockerfile; its
// tests check that they agree with the configuration they ship.
package deploy
