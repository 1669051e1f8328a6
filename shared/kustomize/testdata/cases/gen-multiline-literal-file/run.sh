#!/bin/sh
echo "<hello> & goodbye"
