module piko-k8s.test/k8s/images/pause

go 1.26.0
