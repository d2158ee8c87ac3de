package org.fhirlab.hapi;

import ca.uhn.fhir.context.FhirVersionEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Settings objects HAPI's JPA configuration expects the application to provide, filled from
 * {@link HapiProperties}.
 */
@Configuration
public class StorageConfig {

	/** How the JPA server stores, indexes, searches and pages; see the hapi.fhir.* keys. */
	@Bean
	public JpaStorageSettings jpaStorageSettings(HapiProperties theProps) {
		if (theProps.getFhirVersion() != FhirVersionEnum.R4) {
			throw new IllegalStateException("hapi.fhir.fhir_version=" + theProps.getFhirVersion()
					+ " is not supported by this launcher; only R4 is wired. Set hapi.fhir.fhir_version: R4");
		}
		JpaStorageSettings s = new JpaStorageSettings();

		s.setAllowExternalReferences(theProps.isAllowExternalReferences());
		s.setAllowMultipleDelete(theProps.isAllowMultipleDelete());
		s.setAllowContainsSearches(theProps.isAllowContainsSearches());
		s.setAutoCreatePlaceholderReferenceTargets(theProps.isAutoCreatePlaceholderReferenceTargets());
		s.setEnforceReferentialIntegrityOnWrite(theProps.isEnforceReferentialIntegrityOnWrite());
		s.setEnforceReferentialIntegrityOnDelete(theProps.isEnforceReferentialIntegrityOnDelete());
		s.setExpungeEnabled(theProps.isExpungeEnabled());
		s.setDeleteExpungeEnabled(theProps.isDeleteExpungeEnabled());
		s.setResourceClientIdStrategy(theProps.getClientIdStrategy());
		if (theProps.getServerIdStrategy() != null) {
			s.setResourceServerIdStrategy(theProps.getServerIdStrategy());
		}

		// Search result caching and paging (the image maps max_page_size onto the fetch maximum too).
		s.setReuseCachedSearchResultsForMillis(theProps.getReuseCachedSearchResultsMillis());
		s.setExpireSearchResultsAfterMillis(theProps.getRetainCachedSearchesMins() * 60_000L);
		s.setFetchSizeDefaultMaximum(theProps.getMaxPageSize());
		if (!theProps.getSearchPrefetchThresholds().isEmpty()) {
			s.setSearchPreFetchThresholds(theProps.getSearchPrefetchThresholds());
		}

		// Bulk export output (Binary resources) is deleted after this many hours.
		if (theProps.getBulkExportFileRetentionPeriodHours() != null) {
			s.setBulkExportFileRetentionPeriodHours(theProps.getBulkExportFileRetentionPeriodHours());
		}
		// Everything else (including the scheduled tasks that drive Batch2 / bulk export, and
		// _include, _revinclude, chained and _has search) keeps HAPI's defaults.
		return s;
	}

	/** Partitioning (multi-tenancy) off: one default partition. */
	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** No subscription channel types are enabled (no REST-hook, e-mail or websocket delivery). */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	/**
	 * HAPI's BinaryStorageInterceptor (defined by JpaConfig) requires a binary storage service. Bulk
	 * export output is written as ordinary Binary resources; this database-backed service only comes
	 * into play for externalised binary content, which this launcher does not switch on.
	 */
	@Bean
	public IBinaryStorageSvc binaryStorageSvc() {
		return new DatabaseBinaryContentStorageSvcImpl();
	}
}
