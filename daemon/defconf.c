/*
 * defconf.c - conf/migd.ini compiled into migd, so that migd runs with
 * nothing in /etc. The file is pulled in verbatim by the assembler and
 * NUL-terminated; the Makefile makes this object depend on it.
 */
#include "config.h"

__asm__(".section .rodata\n"
	".global migd_default_config\n"
	".type migd_default_config, @object\n"
	".balign 16\n"
	"migd_default_config:\n"
	".incbin \"conf/migd.ini\"\n"
	".byte 0\n"
	".size migd_default_config, . - migd_default_config\n"
	".previous\n");
