# The stricter crossed mixed model's family x category x framing term as one joint test when
# it has several coefficients (three families, or more than two categories): lmerTest's
# contestMD (Satterthwaite denominator df, as anova(type = 3) for the highest-order term).
# Usage: Rscript crossed_joint.R rows.csv out.json
suppressMessages({library(lmerTest); library(jsonlite)})
a <- commandArgs(TRUE)
d <- read.csv(a[1], stringsAsFactors = TRUE)
d$family <- relevel(d$family, "Gemma"); d$category <- relevel(d$category, "Agency")
d$framing <- factor(d$framing, levels = c("positive", "negative"))
f <- lmer(rank ~ family * category * framing + (1 | response) + (1 | family:response:framing) +
            (1 | model:category:framing), data = d, REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
s <- summary(f, ddf = "Satterthwaite")$coefficients
three <- grep("^family[^:]*:category[^:]*:framing", rownames(s))
L <- diag(nrow(s))[three, , drop = FALSE]
ct <- contestMD(f, L, ddf = "Satterthwaite")
an <- anova(f, type = 3, ddf = "Satterthwaite")
row <- an["family:category:framing", ]
vc <- as.data.frame(VarCorr(f))
out <- list(input = basename(a[1]), n_rows = nrow(d), reml = as.numeric(-2 * logLik(f)), singular = isSingular(f),
            terms = lapply(seq_len(nrow(s)), function(i) list(term = rownames(s)[i], estimate = s[i, 1], se = s[i, 2],
                                                              df = s[i, 3], p = s[i, 5])),
            variances = setNames(as.list(vc$vcov), vc$grp),
            joint = list(term = "family:category:framing", coefficients = rownames(s)[three],
                         F = ct[["F value"]], num_df = ct[["NumDF"]], den_df = ct[["DenDF"]], p = ct[["Pr(>F)"]]),
            anova_type3 = list(F = row[["F value"]], num_df = row[["NumDF"]], den_df = row[["DenDF"]], p = row[["Pr(>F)"]]),
            versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                            lmerTest = as.character(packageVersion("lmerTest"))))
writeLines(toJSON(out, auto_unbox = TRUE, digits = 10, pretty = TRUE), a[2])
