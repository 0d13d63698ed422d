package main

import (
	"github.com/urfave/cli/v2"

	"github.com/tally-sig/tally/release/registry"
)

// registryTLSFlags are the flags of every command that talks to a
// registry, spelled as skopeo and podman spell them.
func registryTLSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.PathFlag{Name: "cert-dir", Usage: "trust the CAs (*.crt) and use the client certificates (*.cert + *.key) in `DIR`, as skopeo --cert-dir; a subdirectory named HOST[:PORT] applies to that registry (the /etc/containers/certs.d layout)"},
		&cli.StringSliceFlag{Name: "insecure-registry", Usage: "reach `HOST[:PORT]` without verifying its certificate, over plain HTTP if it has no TLS (test registries only); repeat for each"},
	}
}

func registryTLSOptions(c *cli.Context) registry.TLSOptions {
	return registry.TLSOptions{CertDir: c.Path("cert-dir"), Insecure: c.StringSlice("insecure-registry")}
}

// registryCredentialsHelp is how every registry command's help says where
// credentials come from.
const registryCredentialsHelp = `Credentials come from the docker configuration ($DOCKER_CONFIG/config.json,
else ~/.docker/config.json) and its credential helpers, as docker login leaves
them; without one, from the containers auth file that podman login and skopeo
login write ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json,
else ~/.config/containers/auth.json).
A registry whose certificate no system CA signed needs --cert-dir DIR holding
its CA as DIR/ca.crt (or SSL_CERT_FILE); --insecure-registry HOST skips the
check, for test registries only.`
