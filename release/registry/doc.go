// Package registry is tally's only client of OCI registries (it alone
// imports go-containerregistry's remote and authn): the reader that Verify
// compares registry images with (ParseRegistryRef, FetchRegistry) and the
// targets Publish writes to, a registry namespace or a local OCI layout
// (OpenTarget, LayoutRoot).
//
// Start with OpenTarget for publishing, FetchRegistry for reading.
package registry
