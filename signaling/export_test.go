package signaling

import paho "github.com/eclipse/paho.mqtt.golang"

// SetOpenConn lets external tests reach the client's net.Conn.
func SetOpenConn(cfg *ClientConfig, fn paho.OpenConnectionFunc) { cfg.openConn = fn }
