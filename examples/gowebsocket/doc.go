// Package gowebsocket shows the wsguard Go package in front of the two
// common Go WebSocket libraries, gorilla/websocket and coder/websocket.
// It is a module of its own, so that the wsguard module does not depend
// on either library; its examples run with go test.
package gowebsocket
