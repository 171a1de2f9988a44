// Command forecast is the demo downstream HTTP API the weather server calls.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/tracegate/tracegate/examples/demo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9002", "address to serve on")
	flag.Parse()
	log.Printf("forecast API serving http://%s/forecast?city=Lisbon", *listen)
	log.Fatal(http.ListenAndServe(*listen, demo.NewForecastAPI()))
}
