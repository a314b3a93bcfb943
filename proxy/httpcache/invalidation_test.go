package httpcache

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestTargetURI(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  *http.Request
		want string
	}{
		{"RFC 9110 §7.1 server request over plain HTTP", &http.Request{Host: "example.com", URL: &url.URL{Path: "/a", RawQuery: "b=c"}}, "http://example.com/a?b=c"},
		{"RFC 9110 §7.1 server request over TLS", &http.Request{Host: "example.com:8443", URL: &url.URL{Path: "/a"}, TLS: &tls.ConnectionState{}}, "https://example.com:8443/a"},
		{"RFC 9110 §7.1 client request with absolute URL", &http.Request{URL: &url.URL{Scheme: "https", Host: "example.com", Path: "/x"}}, "https://example.com/x"},
		{"RFC 9110 §7.1 fragment dropped", &http.Request{Host: "h", URL: &url.URL{Path: "/a", Fragment: "f"}}, "http://h/a"},
		{"RFC 9110 §7.1 nil URL", &http.Request{Host: "h"}, "http://h"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := TargetURI(tt.req).String(); got != tt.want {
				t.Errorf("TargetURI() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestInvalidationURIs(t *testing.T) {
	const target = "http://example.com/res"
	for _, tt := range []struct {
		name   string
		method string
		status int
		h      http.Header
		want   []string
	}{
		{"§4.4 invalidate-POST", "POST", 200, hdr(), []string{target}},
		{"§4.4 invalidate-PUT", "PUT", 201, hdr(), []string{target}},
		{"§4.4 invalidate-DELETE", "DELETE", 204, hdr(), []string{target}},
		{"§4.4 invalidate-M-SEARCH (unknown methods are unsafe)", "M-SEARCH", 200, hdr(), []string{target}},
		{"§4.4 PATCH", "PATCH", 200, hdr(), []string{target}},
		{"§4.4 method names are case-sensitive: get is unknown, hence unsafe", "get", 200, hdr(), []string{target}},
		{"§4.4 3xx is a non-error status", "POST", 303, hdr(), []string{target}},
		{"§4.4 304 is a non-error status", "PUT", 304, hdr(), []string{target}},
		{"§4.4 invalidate-POST-failed (500)", "POST", 500, hdr(), nil},
		{"§4.4 4xx does not invalidate", "POST", 404, hdr(), nil},
		{"§4.4 1xx does not invalidate", "POST", 100, hdr(), nil},
		{"RFC 9110 §9.2.1 GET is safe", "GET", 200, hdr(), nil},
		{"RFC 9110 §9.2.1 HEAD is safe", "HEAD", 200, hdr(), nil},
		{"RFC 9110 §9.2.1 OPTIONS is safe", "OPTIONS", 200, hdr(), nil},
		{"RFC 9110 §9.2.1 TRACE is safe", "TRACE", 200, hdr(), nil},
		{"§4.4 invalidate-POST-location (relative)", "POST", 201, hdr("Location", "/new"), []string{target, "http://example.com/new"}},
		{"§4.4 invalidate-POST-cl (relative path)", "POST", 200, hdr("Content-Location", "other"), []string{target, "http://example.com/other"}},
		{"§4.4 Location and Content-Location", "PUT", 200, hdr("Location", "/l", "Content-Location", "/cl"), []string{target, "http://example.com/l", "http://example.com/cl"}},
		{"§4.4 absolute same origin", "POST", 201, hdr("Location", "http://EXAMPLE.com:80/abs#frag"), []string{target, "http://example.com/abs"}},
		{"§4.4 other host is never invalidated", "POST", 201, hdr("Location", "http://evil.example/x"), []string{target}},
		{"§4.4 other scheme is another origin", "POST", 201, hdr("Location", "https://example.com/x"), []string{target}},
		{"§4.4 other port is another origin", "POST", 201, hdr("Location", "http://example.com:8080/x"), []string{target}},
		{"§4.4 scheme-relative other host", "POST", 201, hdr("Content-Location", "//evil.example/x"), []string{target}},
		{"§4.4 Location equal to the target is not repeated", "POST", 200, hdr("Location", "/res"), []string{target}},
		{"§4.4 invalid URI-reference ignored", "POST", 200, hdr("Location", "http://[::1"), []string{target}},
		{"§4.4 empty Location ignored", "POST", 200, hdr("Location", ""), []string{target}},
		{"§4.4 two Location lines ignored", "POST", 200, hdr("Location", "/a", "Location", "/b"), []string{target}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &http.Request{Method: tt.method, Host: "example.com", URL: &url.URL{Path: "/res"}}
			var got []string
			for _, u := range InvalidationURIs(req, tt.status, tt.h) {
				got = append(got, u.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("InvalidationURIs() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b string
		want bool
	}{
		{"RFC 9110 §4.3.1 identical", "http://a.example/x", "http://a.example/y", true},
		{"RFC 9110 §4.3.1 host case-insensitive", "http://A.example/", "http://a.EXAMPLE/", true},
		{"RFC 9110 §4.3.1 default http port", "http://a.example:80/", "http://a.example/", true},
		{"RFC 9110 §4.3.1 default https port", "https://a.example:443/", "https://a.example/", true},
		{"RFC 9110 §4.3.1 scheme case-insensitive", "HTTP://a.example/", "http://a.example/", true},
		{"RFC 9110 §4.3.1 different scheme", "https://a.example/", "http://a.example/", false},
		{"RFC 9110 §4.3.1 different port", "http://a.example:81/", "http://a.example/", false},
		{"RFC 9110 §4.3.1 different host", "http://b.example/", "http://a.example/", false},
		{"RFC 9110 §4.3.1 IPv6 literal", "http://[::1]:80/", "http://[::1]/", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := url.Parse(tt.a)
			b, _ := url.Parse(tt.b)
			if got := sameOrigin(a, b); got != tt.want {
				t.Errorf("sameOrigin(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
