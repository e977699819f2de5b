package testnet

import (
	"net"
	"sync"
	"time"
)

// Proxy is a userspace TCP proxy on loopback for chaos tests (kernel
// traffic shaping is not available here): it passes connections to Target
// and can refuse them, delay them, or reset them all at once.
type Proxy struct {
	Addr   string // where it listens
	Target string

	ln    net.Listener
	mu    sync.Mutex
	down  bool
	delay time.Duration
	conns map[net.Conn]bool
	done  chan struct{}
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), Target: target, ln: ln, conns: map[net.Conn]bool{}, done: make(chan struct{})}
	go p.accept()
	return p, nil
}

// Down makes the target unreachable: open connections are reset and new
// ones closed at once. Down(false) lets them through again.
func (p *Proxy) Down(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.Reset()
	}
}

// Delay holds every chunk of data, both ways, for d (0: none).
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Reset closes every open connection with a TCP RST.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		delete(p.conns, c)
	}
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	close(p.done)
	p.ln.Close()
	p.Reset()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
				continue
			}
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		go p.serve(c)
	}
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	t, err := net.DialTimeout("tcp", p.Target, 5*time.Second)
	if err != nil {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		return
	}
	p.track(c, true)
	p.track(t, true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(t, c) }()
	go func() { defer wg.Done(); p.pipe(c, t) }()
	wg.Wait()
	p.track(c, false)
	p.track(t, false)
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			if d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a reset: closing both ends passes it on
		}
	}
}
