/* embt/embt.h: umbrella header. Include this; it includes every module header and nothing else. */
#ifndef EMBT_EMBT_H
#define EMBT_EMBT_H

#include "common.h"
#include "file.h"
#include "vocab.h"
#include "table.h"
#include "meta.h"
#include "writer.h"
#include "import.h"
#include "query.h"
#include "ops.h"
#include "classify.h"
#include "train.h"

#endif
