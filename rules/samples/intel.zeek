#fields	indicator	indicator_type	meta.source	meta.desc	meta.url
bad.example.vn	Intel::DOMAIN	campaign-2022	C2 domain	-
203.0.113.7	Intel::ADDR	campaign-2022	C2 address	-
198.51.100.0/24	Intel::SUBNET	campaign-2022	hosting range	-
dl.malware-cdn.example/a.exe	Intel::URL	campaign-2022	dropper	-
e3b0c44298fc1c149afbf4c8996fb924	Intel::FILE_HASH	campaign-2022	sample	-
