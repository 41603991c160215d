# The stricter crossed mixed model of word ranks, fitted by lme4 (REML, bobyqa) with lmerTest's
# Satterthwaite df: the reference core/crossed.py is compared with on data sets other than
# the paper's published full set. Usage: Rscript crossed_lmer.R rows.csv out.json
suppressMessages({library(lmerTest); library(jsonlite)})
a <- commandArgs(TRUE)
d <- read.csv(a[1], stringsAsFactors = TRUE)
d$family <- relevel(d$family, "Gemma"); d$category <- relevel(d$category, "Agency")
d$framing <- factor(d$framing, levels = c("positive", "negative"))
f <- lmer(rank ~ family * category * framing + (1 | response) + (1 | family:response:framing) +
            (1 | model:category:framing), data = d, REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
s <- summary(f, ddf = "Satterthwaite")$coefficients
vc <- as.data.frame(VarCorr(f))
out <- list(input = basename(a[1]), n_rows = nrow(d), reml = as.numeric(-2 * logLik(f)), singular = isSingular(f),
            terms = lapply(seq_len(nrow(s)), function(i) list(term = rownames(s)[i], estimate = s[i, 1], se = s[i, 2],
                                                              df = s[i, 3], p = s[i, 5])),
            variances = setNames(as.list(vc$vcov), vc$grp),
            versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            lmerTest = as.character(packageVersion("lmerTest"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = 10, pretty = TRUE), a[2])
