/*
 * norm.h - normalisers for what callers say or type.
 *
 * UK phone numbers in every common spoken or typed form to E.164, and claim
 * references to the canonical "RMC-1001". Pure functions, any thread.
 */
#ifndef VWS_NORM_H
#define VWS_NORM_H

#include <stddef.h>

/*
 * "07700 900001", "+44 (0)7700 900001", "447700900001", "0044 7700 900001",
 * "7700900001", "oh seven seven double oh ...": to "+447700900001".
 * Other +CC international numbers are kept as E.164. out >= 17 bytes.
 * Returns 0, or ERR_INVALID_PHONE (withheld, too short/long, letters, ...).
 */
int norm_phone(const char *in, char *out, size_t outsz);

/* True for a UK mobile that can take SMS: ^\+447[1-57-9]\d{8}$ or +447624. */
int norm_is_uk_mobile(const char *e164);

/*
 * "rmc 1001", "RMC1001", "R M C dash 1001", "rmc-1001", "r.m.c. 1001",
 * "RMC one zero zero one": to "RMC-1001". out >= 16 bytes.
 * Returns 0 or ERR_INVALID_CLAIM_REF.
 */
int norm_claim_ref(const char *in, char *out, size_t outsz);

#endif
