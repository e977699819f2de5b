// Package enrich turns what a browser sends with an event (User-Agent
// header, referrer, page query string, client IP) into the dimensions that
// reports group by: browser, OS, device, bot or not, source and channel, UTM
// parameters and location.
//
// Everything here is a pure function of its inputs and of constant tables,
// except that a Geo opens one database file. Nothing is logged and no input
// is kept beyond the bounded user-agent cache, so the visitor's IP address
// never leaves the call that looks it up.
package enrich
