#!/bin/sh
# move_pages(2) moves an anonymous page from node 0 to node 1 and back.
exec build/vm/vm-sanity move-pages
