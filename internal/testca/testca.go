// Package testca makes a certificate authority for a test: a CA
// certificate in a PEM file and a server certificate for 127.0.0.1 signed
// by it, for TLS listeners started by tests (kfake, a Kafka broker).
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority. Its server certificate also serves
// as a client certificate (mutual TLS).
type CA struct {
	// File is the CA certificate, PEM.
	File string
	// Server is a certificate for 127.0.0.1 signed by the CA.
	Server tls.Certificate
	// ServerCertFile and ServerKeyFile hold Server as PEM.
	ServerCertFile, ServerKeyFile string
	// Pool trusts the CA.
	Pool *x509.CertPool
}

// New makes a CA named name, valid for an hour, with its files in a
// temporary directory of tb.
func New(tb testing.TB, name string) CA {
	tb.Helper()
	dir := tb.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	skey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	stmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	sder, err := x509.CreateCertificate(rand.Reader, stmpl, ca, &skey.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	skeyDER, err := x509.MarshalPKCS8PrivateKey(skey)
	if err != nil {
		tb.Fatal(err)
	}
	c := CA{File: filepath.Join(dir, name+".pem"), Server: tls.Certificate{Certificate: [][]byte{sder}, PrivateKey: skey},
		ServerCertFile: filepath.Join(dir, name+"-server.pem"), ServerKeyFile: filepath.Join(dir, name+"-server.key"),
		Pool: x509.NewCertPool()}
	c.Pool.AddCert(ca)
	for f, b := range map[string]*pem.Block{
		c.File:           {Type: "CERTIFICATE", Bytes: der},
		c.ServerCertFile: {Type: "CERTIFICATE", Bytes: sder},
		c.ServerKeyFile:  {Type: "PRIVATE KEY", Bytes: skeyDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}
